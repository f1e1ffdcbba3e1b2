"""Unit tests of _pg_backup_wal: the backup's WAL segments copied without following links."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup import PgError
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_backup_wal import copy_wal


def test_copy_wal_copies_the_range_and_never_overwrites(tmp_path):
    wal = tmp_path / "data" / "pg_wal"
    wal.mkdir(parents=True)
    for n in (1, 2, 3, 4):
        (wal / ("%024X" % n).replace(" ", "0")).write_bytes(b"%d" % n * 10)
    first, last = "%024X" % 2, "%024X" % 3
    dest = tmp_path / "dest"
    dest.mkdir()
    assert copy_wal(str(tmp_path / "data"), first, last, str(dest)) == [first, last]
    assert (dest / first).read_bytes() == b"2" * 10 and sorted(os.listdir(dest)) == [first, last]
    assert (dest / first).stat().st_mode & 0o777 == 0o600
    with pytest.raises(PgError, match="File exists"):
        copy_wal(str(tmp_path / "data"), first, last, str(dest))
    assert sorted(os.listdir(dest)) == [first, last]
    # a segment already recycled: refused, nothing left behind
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    with pytest.raises(PgError, match="no longer complete"):
        copy_wal(str(tmp_path / "data"), "%024X" % 1, "%024X" % 5, str(dest2))
    assert os.listdir(dest2) == []


def test_copy_wal_refuses_a_symlinked_segment_or_destination(tmp_path):
    wal = tmp_path / "data" / "pg_wal"
    wal.mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (wal / ("%024X" % 2)).symlink_to(tmp_path / "secret")
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(PgError, match="cannot open WAL file"):
        copy_wal(str(tmp_path / "data"), "%024X" % 2, "%024X" % 2, str(dest))
    (tmp_path / "link").symlink_to(dest)
    with pytest.raises(PgError, match="WAL destination"):
        copy_wal(str(tmp_path / "data"), "%024X" % 2, "%024X" % 2, str(tmp_path / "link"))


# -- _consistency.PgHolder ----------------------------------------------------------------------
