"""storage_benchmark's tools (_benchmark_proc): fio or dd in a child, killed on a time-out."""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils import _benchmark_proc as sb


def test_run_tool_kills_the_tool_on_time_out_and_on_an_exception(tmp_path):
    fd = os.open(str(tmp_path / "f"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        rc, _out, _err, timed_out = sb.run_tool(["sleep", "30"], fd, 0.3)
        assert timed_out and rc != 0
        rc, out, _err, timed_out = sb.run_tool(["sh", "-c", "readlink /proc/self/fd/%d" % fd], fd, 10)
        assert (rc, out.strip(), timed_out) == (0, str(tmp_path / "f"), False)
    finally:
        os.close(fd)
