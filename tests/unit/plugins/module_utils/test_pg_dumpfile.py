"""_pg_dumpfile: a dump is complete under its name or absent; the directory is private."""

from __future__ import annotations

import hashlib
import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_dumpfile import DumpDir, parse_sha256_file
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath


def test_write_hashes_what_is_on_disk_and_never_replaces(tmp_path):
    with DumpDir(str(tmp_path / "a" / "b")) as dumps:
        sha, size = dumps.write_bytes("p.dump", b"x" * 3000)
        assert (sha, size) == (hashlib.sha256(b"x" * 3000).hexdigest(), 3000)
        with pytest.raises(FileExistsError):
            dumps.write_bytes("p.dump", b"other")
        assert (tmp_path / "a" / "b" / "p.dump").read_bytes() == b"x" * 3000
        dumps.write_dump_sidecars("p.dump", sha, {"rows": 1})
        assert parse_sha256_file((tmp_path / "a" / "b" / "p.dump.sha256").read_text()) == sha
    assert sorted(os.listdir(tmp_path / "a" / "b")) == ["p.dump", "p.dump.json", "p.dump.sha256"]
    assert oct((tmp_path / "a" / "b").stat().st_mode & 0o777) == "0o700"


def test_a_failed_write_leaves_nothing_and_partials_are_cleaned(tmp_path):
    with DumpDir(str(tmp_path)) as dumps:

        def produce(fd):
            os.write(fd, b"half")
            raise OSError(28, "No space left on device")

        with pytest.raises(OSError):
            dumps.write("p.dump", produce)
        assert os.listdir(tmp_path) == []
        (tmp_path / ".p.dump.0123abcd.partial").write_bytes(b"left by a killed run")
        (tmp_path / ".keep.me").write_bytes(b"not ours")
        assert dumps.clean_partials() == [str(tmp_path / ".p.dump.0123abcd.partial")]
    assert os.listdir(tmp_path) == [".keep.me"]


def test_a_symlinked_or_shared_dump_directory_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    with pytest.raises(UnsafePath, match="symlink"):
        DumpDir(str(tmp_path / "link" / "sub"))
    (tmp_path / "shared").mkdir(mode=0o777)
    os.chmod(tmp_path / "shared", 0o777)  # noqa: S103 - the unsafe directory under test
    with pytest.raises(UnsafePath, match="writable by it alone"):
        DumpDir(str(tmp_path / "shared"))
