"""Unit tests for tier_migrate's flushes and stat checks (_migrate_durable.py)."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_durable as m_durable


def test_syncfs_and_fsync_dir(tmp_path, monkeypatch):
    m_durable.syncfs(bytes(tmp_path))
    m_durable.fsync_dir(bytes(tmp_path))

    class Failing:
        @staticmethod
        def syncfs(_fd):
            return -1

    monkeypatch.setattr(m_durable, "_libc", lambda: Failing)
    monkeypatch.setattr(ctypes, "get_errno", lambda: errno.EIO)
    with pytest.raises(OSError, match="syncfs"):
        m_durable.syncfs(bytes(tmp_path))


def test_drop_cache_failure_is_tolerated(monkeypatch):
    def boom(*_a):
        raise OSError(errno.EINVAL, "no")

    monkeypatch.setattr(os, "posix_fadvise", boom)
    assert m_durable.drop_cache(0) is False


def test_same_stat(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(b"x")
    a = os.stat(f)
    assert m_durable.same_stat(a, os.stat(f))
    f.write_bytes(b"xy")
    assert not m_durable.same_stat(a, os.stat(f))
