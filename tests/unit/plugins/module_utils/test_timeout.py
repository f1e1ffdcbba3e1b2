from __future__ import annotations

import errno
import os
import socket
import time

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _timeout


def test_statvfs_answers(tmp_path):
    st = _timeout.statvfs_with_timeout(str(tmp_path), timeout=5)
    assert st["f_blocks"] > 0
    assert st["f_frsize"] > 0


def test_stat_error_keeps_errno(tmp_path):
    with pytest.raises(OSError) as exc:
        _timeout.stat_with_timeout(str(tmp_path / "missing"), timeout=5)
    assert exc.value.errno == errno.ENOENT


def _hang(seconds):
    time.sleep(seconds)
    return "late"


def test_time_out_returns_in_time():
    start = time.monotonic()
    with pytest.raises(_timeout.ProbeTimeout):
        _timeout.call_with_timeout(_hang, (30,), timeout=0.5)
    assert time.monotonic() - start < 1.5


def _boom():
    raise ValueError("bad thing")


def test_non_os_error_is_reported():
    with pytest.raises(RuntimeError, match="ValueError: bad thing"):
        _timeout.call_with_timeout(_boom, (), timeout=5)


def test_tcp_probe_open_and_closed():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    try:
        assert _timeout.tcp_probe("127.0.0.1", port, timeout=2) == (True, "")
    finally:
        server.close()
    ok, reason = _timeout.tcp_probe("127.0.0.1", port, timeout=2)
    assert not ok
    assert str(port) in reason


def test_realpath_with_timeout_resolves_in_a_child_and_gives_bytes(tmp_path):
    from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import realpath_with_timeout

    (tmp_path / "srv" / "tier").mkdir(parents=True)
    (tmp_path / "data").symlink_to(tmp_path / "srv")
    name = os.fsencode(tmp_path / "data" / "tier")
    assert realpath_with_timeout(name, 5) == os.fsencode(tmp_path / "srv" / "tier")
    odd = os.fsencode(tmp_path / "srv") + b"/\xff-not-utf8"
    assert realpath_with_timeout(odd, 5) == odd
