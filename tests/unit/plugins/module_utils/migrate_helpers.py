"""Helpers shared by tier_migrate's unit tests (test_migrate*.py): policies from the module's
defaults and old files."""

from __future__ import annotations

import hashlib
import os
import shutil
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_codec as m_codec
from ansible_collections.jts.tiered_storage.plugins.modules import tier_migrate

DAY = 86400


# The module's defaults (its argument_spec's): build_policy gets every parameter, as from the module.
DEFAULTS = {name: spec.get("default") for name, spec in tier_migrate.ARGUMENT_SPEC.items()}


def _params(src, dst, **kw):
    base = dict(DEFAULTS, source=str(src), destination=str(dst), settle_time="0", older_than="7d")
    base.update(kw)
    return base


def _policy(src, dst, tmp_path, **kw):
    kw.setdefault("lock_dir", str(tmp_path / "locks"))
    kw.setdefault("require_mounted", False)
    return m.build_policy(_params(src, dst, **kw))


def _old_file(path, data=b"x", days=10):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    when = time.time() - days * DAY
    os.utime(path, (when, when))
    return path


def _local_stat(path, timeout):
    st = os.stat(path)
    return {"st_mode": st.st_mode, "st_dev": st.st_dev, "st_ino": st.st_ino, "st_size": st.st_size}


def _mounts_for(tmp_path, fstype="xfs", options="rw"):
    return [
        {"mount_point": b"/", "fstype": "ext4", "source": "/dev/vda", "options": {"rw"}},
        {"mount_point": bytes(tmp_path), "fstype": fstype, "source": "/dev/loop9", "options": set(options.split(","))},
    ]


# --------------------------------------------------------------------------- verified copies

ZSTD = shutil.which("zstd")
DATA = (b"2026-01-01 INFO order filled id=42\n" * 5000) + os.urandom(70000)


def _write(tmp_path, codec, data=DATA, level=None):
    src = tmp_path / "src"
    src.write_bytes(data)
    dst = tmp_path / ("dst" + m_codec.SUFFIXES[codec].decode())
    sfd = os.open(src, os.O_RDONLY)
    dfd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        result = m_codec.write_stream(m_codec.open_reader(sfd), dfd, codec, level, ZSTD)
    finally:
        os.close(sfd)
        os.close(dfd)
    return dst, result


BLOCK = 4096


def _sparse(path, size, data_at=()):
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset in data_at:
            handle.seek(offset)
            handle.write(b"\xa5" * BLOCK)


def _sha(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()
