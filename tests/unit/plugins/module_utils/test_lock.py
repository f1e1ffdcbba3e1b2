from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock, LockBusy, lock_path_for


def test_second_holder_is_refused_and_names_the_lock(tmp_path):
    path = str(tmp_path / "locks" / "x.lock")
    with FileLock(path, "tier_migrate /a -> /b"):
        with pytest.raises(LockBusy) as exc:
            FileLock(path, "tier_migrate /a -> /b").acquire()
        message = str(exc.value)
        assert path in message
        assert "tier_migrate /a -> /b" in message
        assert "pid %d" % os.getpid() in message
    # released: can be taken again
    with FileLock(path):
        pass


def test_lock_released_when_holder_is_killed(tmp_path):
    path = str(tmp_path / "k.lock")
    code = (
        "import sys, time; sys.path.insert(0, %r);"
        "from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock;"
        "l = FileLock(%r).acquire(); print('held', flush=True); time.sleep(60)"
    ) % (str(Path(__file__).resolve().parents[4] / ".collections"), path)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(LockBusy):
            FileLock(path).acquire()
    finally:
        proc.kill()
        proc.wait()
    with FileLock(path):
        pass


def test_lock_path_is_stable_and_distinct(tmp_path):
    a = lock_path_for("migrate", "/src", "/dst", lock_dir=str(tmp_path))
    assert a == lock_path_for("migrate", "/src", "/dst", lock_dir=str(tmp_path))
    assert a != lock_path_for("migrate", "/dst", "/src", lock_dir=str(tmp_path))
    assert os.path.basename(a).startswith("jts-migrate-")
