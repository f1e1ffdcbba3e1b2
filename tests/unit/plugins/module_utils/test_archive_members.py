"""The members an archive adds (_archive_members): the manifest read back and checked after a restore."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _archive_members as am
from ansible_collections.jts.tiered_storage.plugins.module_utils import _snapshot_archive_files as saf

SEG1, SEG2 = "000000010000000000000005", "000000010000000000000006"
LABEL = "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nLABEL: jts_lvm_snapshot\n"


def test_restore_removes_postmaster_pid_and_refuses_missing_wal(tmp_path):
    data = tmp_path / "data"
    (data / "pg_wal").mkdir(parents=True)
    (data / "backup_label").write_text(LABEL)
    (data / "pg_wal" / SEG1).write_bytes(b"x")
    (data / "postmaster.pid").write_text("4242\n")
    manifest = dict(am.manifest_of({"mode": "application", "method": "postgresql", "data_directory": "data"}))
    manifest.update(backup_label=True, wal_files=[SEG1])
    (tmp_path / am.MANIFEST).write_text(json.dumps(manifest))
    assert am.finish_restore(str(tmp_path), {"archive": "a"})["postmaster_pid_removed"] is True
    assert not (data / "postmaster.pid").exists()
    assert not (tmp_path / am.MANIFEST).exists()
    manifest["wal_files"] = [SEG1, SEG2]
    (tmp_path / am.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(saf.SnapshotArchiveError, match="lacks pg_wal/%s in data: it would not start" % SEG2):
        am.finish_restore(str(tmp_path), {"archive": "a"})
    # a data directory that is a symlink in the restored tree is never followed
    shutil.move(str(data), str(tmp_path / "elsewhere"))
    os.symlink("elsewhere", data)
    (tmp_path / am.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(saf.SnapshotArchiveError, match="restored data directory"):
        am.finish_restore(str(tmp_path), {"archive": "a"})
    # the archive said it had a manifest and the extraction left none: an error, not "no manifest"
    with pytest.raises(saf.SnapshotArchiveError, match="No such file"):
        am.finish_restore(str(tmp_path), {"archive": "a"})
    assert am.finish_restore(str(tmp_path), {"archive": "a"}, has_manifest=False) is None


@pytest.mark.parametrize("kind", ["fifo", "directory", "list", "bad_wal"])
def test_a_manifest_that_is_not_one_is_an_error_not_a_hang_or_a_traceback(tmp_path, kind):
    path = tmp_path / am.MANIFEST
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "directory":
        path.mkdir()
    elif kind == "list":
        path.write_text("[1]")
    else:
        (tmp_path / "data" / "pg_wal").mkdir(parents=True)
        (tmp_path / "data" / "backup_label").write_text(LABEL)
        manifest = dict(am.manifest_of({"mode": "application", "method": "postgresql", "data_directory": "data"}))
        manifest.update(backup_label=True, wal_files=["../../../etc/passwd"])
        path.write_text(json.dumps(manifest))
    with pytest.raises(saf.SnapshotArchiveError, match=r"not a manifest|not segment names"):
        am.finish_restore(str(tmp_path), {"archive": "a"})
