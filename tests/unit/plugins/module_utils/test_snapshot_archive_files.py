"""snapshot_archive's files beside an archive (_snapshot_archive_files): checksum lines, temporary names."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _snapshot_archive_files as saf


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the checksum file"),
        ("not a checksum\n", "is not a sha256sum line for a.tar.zst"),
        ("%s  other.tar.zst\n" % ("0" * 64), "is not a sha256sum line for a.tar.zst"),
    ],
)
def test_bad_checksum_files(tmp_path, content, message):
    archive = tmp_path / "a.tar.zst"
    archive.write_bytes(b"x")
    if content is not None:
        (tmp_path / "a.tar.zst.sha256").write_text(content)
    with pytest.raises(saf.SnapshotArchiveError, match=message):
        saf.read_checksum(str(archive))


def test_binary_checksum_lines_are_read(tmp_path):
    archive = tmp_path / "a.tar.zst"
    (tmp_path / "a.tar.zst.sha256").write_text("%s *a.tar.zst\n" % ("a" * 64))
    assert saf.read_checksum(str(archive)) == "a" * 64


@pytest.mark.parametrize(
    "name, ours",
    [
        (".postgres_20261122T023000Z.tar.zst.k3j_9xq0.partial", True),
        (".postgres_20261122T023000Z.tar.zst.0a1b2c3d.sha256.partial", True),
        (".postgres_20261122T023000Z.tar.zst.partial", False),
        ("postgres_20261122T023000Z.tar.zst.k3j_9xq0.partial", False),
        (".postgres.tar.zst.k3j_9xq0.partial.x", False),
        (".notes.partial", False),
    ],
)
def test_is_temporary(name, ours):
    assert saf.is_temporary(name) is ours
