"""Unit tests for tier_migrate's logic (_migrate.py): policy, mounts, overlap, selection, transfer."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time

import pytest
from migrate_helpers import _mounts_for, _old_file, _policy

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_registry as m_registry
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_stage as m_stage
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_transfer as m_transfer
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import Journal
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_readback import hash_path

# --------------------------------------------------------------------------- policy


# --------------------------------------------------------------------------- overlap and preflight


# --------------------------------------------------------------------------- selection


# --------------------------------------------------------------------------- migrate / rollback


def _run(src, dst, tmp_path, check_mode=False, **kw):
    pol = _policy(src, dst, tmp_path, **kw)
    return m.migrate(pol, check_mode=check_mode, zstd_bin="/usr/bin/zstd", mounts=_mounts_for(tmp_path))


def _snapshot(root):
    out = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = os.path.join(dirpath, name)
            with open(p, "rb") as handle:
                out[os.path.relpath(p, root)] = handle.read()
    return out


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_migrate_and_rollback_round_trip(tmp_path, codec):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "x" / "one.log", os.urandom(3000))
    _old_file(src / "two.log", b"hello " * 1000)
    os.chmod(src / "two.log", 0o640)
    dst.mkdir()
    before = _snapshot(src)
    st_before = os.stat(src / "two.log")
    res = _run(src, dst, tmp_path, compression=codec)
    assert (res["changed"], res["moved"], res["failed_count"]) == (True, 2, 0)
    assert res["moved_bytes"] == 6000 + 3000
    suffix = {"none": "", "zstd": ".zst", "gzip": ".gz"}[codec]
    placed = dst / ("two.log" + suffix)
    st_after = os.stat(placed)
    assert (st_after.st_mode, st_after.st_mtime_ns, st_after.st_uid) == (
        st_before.st_mode,
        st_before.st_mtime_ns,
        st_before.st_uid,
    )
    assert hash_path(bytes(placed), codec, "/usr/bin/zstd")[1] == 6000
    assert not (src / "two.log").exists()
    assert [n for n in os.listdir(dst) if n.startswith(".jts-migrate-")] == []
    records, damaged = Journal(bytes(dst / ".jts-migrate" / "journal.jsonl")).read()
    assert damaged == 0 and len(records) == 2 and records[0]["run"] == res["run_id"]
    again = _run(src, dst, tmp_path, compression=codec)
    assert again["changed"] is False and again["moved"] == 0
    back = m.undo(_policy(src, dst, tmp_path), zstd_bin="/usr/bin/zstd")
    assert back["rolled_back"] == 2 and back["changed"] is True
    assert _snapshot(src) == before
    assert os.stat(src / "two.log").st_mode == st_before.st_mode
    assert _snapshot(dst).keys() == {".jts-migrate/journal.jsonl", ".jts-migrate/journal.jsonl.tmpdirs"}
    again = m.undo(_policy(src, dst, tmp_path), zstd_bin="/usr/bin/zstd")
    assert again["changed"] is False


def test_migrate_check_mode_changes_nothing(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"abc")
    dst.mkdir()
    res = _run(src, dst, tmp_path, check_mode=True)
    assert res["moved"] == 1 and res["moved_bytes"] == 3 and res["run_id"] is None
    assert res["files"] == [{"src": str(src / "a.log"), "dst": str(dst / "a.log"), "size": 3}]
    assert (src / "a.log").exists() and os.listdir(dst) == []


def test_migrate_copy_mode_keeps_source_and_is_idempotent(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"abc")
    dst.mkdir()
    res = _run(src, dst, tmp_path, mode="copy")
    assert res["moved"] == 1
    assert (src / "a.log").read_bytes() == (dst / "a.log").read_bytes() == b"abc"
    again = _run(src, dst, tmp_path, mode="copy")
    assert again["changed"] is False and again["moved"] == 0
    assert again["skipped_count"] == 0


def test_migrate_existing_different_destination_is_left_alone(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"new content")
    (dst).mkdir()
    (dst / "a.log").write_bytes(b"other")
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"destination exists with different content; left alone": 1}
    assert (src / "a.log").read_bytes() == b"new content"
    assert (dst / "a.log").read_bytes() == b"other"


def test_migrate_finishes_a_half_done_move(tmp_path):
    """A crash after the copy was linked into place but before the source went: no duplicate."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"same")
    dst.mkdir()
    (dst / "a.log").write_bytes(b"same")
    (dst / ".jts-migrate-old-1.tmp").write_bytes(b"partial")
    registry = m_registry.TempRegistry(bytes(dst / ".jts-migrate" / "journal.jsonl") + b".tmpdirs")
    registry.add(bytes(dst), b"")
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 1 and res["cleaned_temp_files"] == 1
    assert not (src / "a.log").exists()
    assert sorted(os.listdir(dst)) == [".jts-migrate", "a.log"]


def test_migrate_unreadable_file_is_reported_and_rest_go_on(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"a")
    _old_file(src / "secret.log", b"s")
    dst.mkdir()
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        if os.fsencode(path).endswith(b"secret.log"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_open(path, flags, *a, **kw)

    monkeypatch.setattr(os, "open", fake_open)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 1 and res["failed_count"] == 1
    assert res["failed_files"][0]["reason"] == "cannot open: Permission denied"
    assert (src / "secret.log").exists() and (dst / "a.log").exists()


def test_migrate_destination_full_stops_cleanly(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        _old_file(src / ("f%d" % i), b"%d" % i * 100, days=10 + i)
    dst.mkdir()
    calls = {"n": 0}
    real = m_stage.copy_content

    def filling(src_fd, fd, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src_fd, fd, *a, **kw)

    monkeypatch.setattr(m_stage, "copy_content", filling)
    res = _run(src, dst, tmp_path, check_space=False)
    assert "is full (No space left on device)" in res["error"]
    assert res["moved"] == 2
    assert sorted(os.listdir(src)) == ["f0", "f1"]
    assert sorted(os.listdir(dst)) == [".jts-migrate", "f2", "f3"]


def test_migrate_source_changed_during_copy(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    f = _old_file(src / "grow.log", b"start\n")
    dst.mkdir()
    real = m_stage.copy_content

    def appending(src_fd, fd, *a, **kw):
        out = real(src_fd, fd, *a, **kw)
        with open(f, "ab") as handle:
            handle.write(b"more\n")
        return out

    monkeypatch.setattr(m_stage, "copy_content", appending)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"changed during the copy (left at the source)": 1}
    assert f.read_bytes() == b"start\nmore\n"
    assert os.listdir(dst) == [".jts-migrate"]


def test_migrate_space_refusal_moves_nothing(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a" * 100)
    dst.mkdir()
    with pytest.raises(m.MigrateError, match="do not fit"):
        _run(src, dst, tmp_path, min_free="100%")
    assert (src / "a").exists()


def test_migrate_is_locked(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    pol = _policy(src, dst, tmp_path)
    with m.lock(pol, bytes(src), bytes(dst)), pytest.raises(LockBusy, match="is in use by another run"):
        m.migrate(pol, mounts=_mounts_for(tmp_path))


def test_rollback_errors(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    dst.mkdir()
    with pytest.raises(m.MigrateError, match="records no moves"):
        m.undo(_policy(src, dst, tmp_path))
    _old_file(src / "a", b"a")
    res = _run(src, dst, tmp_path)
    with pytest.raises(m.MigrateError, match="run nope is not in journal"):
        m.undo(_policy(src, dst, tmp_path, run_id="nope"))
    other = tmp_path / "other"
    other.mkdir()
    with pytest.raises(m.MigrateError, match="is not under source"):
        m.undo(_policy(other, dst, tmp_path, run_id=res["run_id"]))


def test_rollback_original_path_reused_and_missing_copies(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a")
    _old_file(src / "b", b"b")
    dst.mkdir()
    res = _run(src, dst, tmp_path)
    (src / "a").write_bytes(b"someone else")
    (dst / "b").unlink()
    back = m.undo(_policy(src, dst, tmp_path, run_id=res["run_id"]))
    assert back["rolled_back"] == 0
    assert back["skipped_reasons"] == {"the original path holds a different file; left alone": 1}
    assert back["failed_files"][0]["reason"] == "neither the original nor the tier copy exists"
    assert (dst / "a").read_bytes() == b"a"


def test_rollback_check_mode(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"a")
    dst.mkdir()
    _run(src, dst, tmp_path)
    res = m.undo(_policy(src, dst, tmp_path), check_mode=True)
    assert res["rolled_back"] == 1 and (dst / "a").exists() and not (src / "a").exists()


def test_rollback_detects_corrupted_tier_copy(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a", b"aaaa")
    dst.mkdir()
    _run(src, dst, tmp_path)
    (dst / "a").write_bytes(b"aaab")
    res = m.undo(_policy(src, dst, tmp_path))
    assert res["failed_files"][0]["reason"] == "content does not match the journal's checksum"
    assert not (src / "a").exists() and (dst / "a").exists()


def test_rename_noreplace_at(tmp_path):
    from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import rename_noreplace_at

    (tmp_path / "a").write_bytes(b"a")
    (tmp_path / "b").write_bytes(b"b")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError):
            rename_noreplace_at(fd, b"a", fd, b"b")
        assert (tmp_path / "b").read_bytes() == b"b"
        rename_noreplace_at(fd, b"a", fd, b"c")
    finally:
        os.close(fd)
    assert (tmp_path / "c").read_bytes() == b"a" and not (tmp_path / "a").exists()


# --------------------------------------------------------------------------- issue 17: fewer flushes, cheaper checks


def test_a_batch_records_its_temporary_directories_with_one_flush(tmp_path, monkeypatch):
    """Every directory that gets a temporary file is recorded (and flushed) before it gets one,
    but a batch of files in many directories costs one append to the registry, not one each."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(6):
        _old_file(src / ("d%d" % i) / "f", b"%d" % i * 100)
    dst.mkdir()
    appends = []
    real = m_registry.append_private

    def counting(path, data):
        if path.endswith(b".tmpdirs"):
            appends.append(data)
            # the temporary files of the batch come after this flush
            assert not any(name.startswith(".jts-migrate-") for _r, _d, names in os.walk(dst) for name in names)
        return real(path, data)

    monkeypatch.setattr(m_registry, "append_private", counting)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 6
    assert len(appends) == 1 and appends[0].count(b"\n") == 6


def test_one_flush_per_batch_and_every_commit_after_the_flush_that_follows_its_placing(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(3):
        _old_file(src / ("f%d" % i), b"%d" % i * 100, days=10 + i)
    dst.mkdir()
    log = []
    real_sync, real_place, real_commit = m_transfer.syncfs, m.Transfer.place, m.Transfer.commit
    monkeypatch.setattr(m_transfer, "syncfs", lambda path: log.append("flush") or real_sync(path))
    monkeypatch.setattr(m.Transfer, "place", lambda self, job: log.append(("place", job.rel)) or real_place(self, job))
    monkeypatch.setattr(
        m.Transfer,
        "commit",
        lambda self, placed: log.append(("commit", [j.rel for j in placed])) or real_commit(self, placed),
    )
    res = _run(src, dst, tmp_path, batch_files=1)
    assert res["moved"] == 3 and sorted(os.listdir(src)) == []
    assert log.count("flush") == 4  # three batches, one flush each, and one to commit the last
    for i, event in enumerate(log):
        if event[0] == "commit":
            for rel in event[1]:
                placed_at = log.index(("place", rel))
                assert "flush" in log[placed_at:i], "%s committed before a flush after its placing" % rel


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_copy_that_reads_back_different_from_the_source_is_not_moved(tmp_path, monkeypatch, codec):
    """The copy is changed on the destination after the flush (a lost write, a bad block): the
    read-back differs from the source, the file fails and the source stays."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    data = os.urandom(3 * 1024 * 1024 + 11)
    _old_file(src / "big.log", data)
    _old_file(src / "ok.log", b"fine\n" * 100)
    dst.mkdir()
    real = m_transfer.syncfs
    damaged = []

    def flush_then_damage(path):
        real(path)
        for name in os.listdir(dst):
            big = os.path.getsize(dst / name) > 1024 * 1024  # big.log's (ok.log's may be there too)
            if name.startswith(".jts-migrate-") and name.endswith(".tmp") and big and not damaged:
                damaged.append(name)
                with open(dst / name, "r+b") as handle:
                    size = os.fstat(handle.fileno()).st_size
                    handle.seek(size - 5 if codec == "none" else size // 2)
                    byte = handle.read(1)
                    handle.seek(-1, os.SEEK_CUR)
                    handle.write(bytes([byte[0] ^ 0x10]))
                break  # the first one only

    monkeypatch.setattr(m_transfer, "syncfs", flush_then_damage)
    res = _run(src, dst, tmp_path, compression=codec, batch_files=1)
    assert res["failed_count"] == 1 and res["moved"] == 1
    reason = res["failed_files"][0]["reason"]
    assert reason.startswith("verification failed") or (codec == "zstd" and "zstd -d failed" in reason)
    assert (src / "big.log").read_bytes() == data
    names = sorted(n for n in os.listdir(dst) if n != ".jts-migrate")
    assert names == ["ok.log" + (".zst" if codec == "zstd" else "")]


def test_a_source_changed_between_its_copy_and_the_comparison_stays(tmp_path, monkeypatch):
    src, dst = tmp_path / "src", tmp_path / "dst"
    f = _old_file(src / "grow.log", b"start\n" * 1000)
    dst.mkdir()
    real = m_transfer.syncfs

    def flush_then_append(path):
        real(path)
        if f.stat().st_size == 6000:
            with open(f, "ab") as handle:
                handle.write(b"more\n")

    monkeypatch.setattr(m_transfer, "syncfs", flush_then_append)
    res = _run(src, dst, tmp_path)
    assert res["moved"] == 0 and res["skipped_reasons"] == {"changed during the copy (left at the source)": 1}
    assert f.read_bytes() == b"start\n" * 1000 + b"more\n"
    assert os.listdir(dst) == [".jts-migrate"]


def _trading_log(size, seed=7):
    """Log lines full of ids and prices, like the benchmark's set C (benchmarks/bench_tier_migrate.py)."""
    import random

    rng = random.Random(seed)
    words = [
        "order",
        "fill",
        "cancel",
        "quote",
        "book",
        "trade",
        "risk",
        "limit",
        "venue",
        "session",
        "heartbeat",
        "latency",
    ]
    t, out, n = 1_700_000_000.0, [], 0
    while n < size:
        t += rng.random() / 50
        line = "%s.%06d %s [%s] %s id=%d px=%.4f qty=%d venue=%s\n" % (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)),
            int((t % 1) * 1e6),
            rng.choice(["INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"]),
            rng.choice(words),
            " ".join(rng.choice(words) for _ in range(rng.randint(2, 6))),
            rng.randint(1, 10**9),
            rng.random() * 1000,
            rng.randint(1, 5000),
            rng.choice(("XNAS", "XNYS", "BATS", "EDGX")),
        )
        out.append(line)
        n += len(line)
    return "".join(out).encode()


@pytest.mark.skipif(not shutil.which("zstd"), reason="needs the zstd tool")
def test_default_zstd_compresses_logs_within_ten_percent_of_gzip_6(tmp_path):
    """Issue 17, set C: at its default settings zstd must land within 10 % of gzip -6's size
    (plain level 3 was 10.3 % above it on such logs)."""
    import gzip

    src, dst = tmp_path / "src", tmp_path / "dst"
    data = _trading_log(4 << 20)
    _old_file(src / "app.log", data)
    dst.mkdir()
    res = _run(src, dst, tmp_path, compression="zstd")
    assert res["moved"] == 1
    assert (dst / "app.log.zst").stat().st_size <= 1.10 * len(gzip.compress(data, 6))


def test_the_journal_keeps_its_shape_on_disk(tmp_path):
    """A move writes one move record per file and an undo one undo record naming the tier copy
    (its ``dst``), the lines older journals hold and ``pending_undo`` reads (issue 18 kept them)."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    _old_file(src / "a.log", b"alpha\n" * 10)
    dst.mkdir()
    moved = _run(src, dst, tmp_path)
    back = m.undo(_policy(src, dst, tmp_path))
    assert back["rolled_back"] == 1
    lines = (dst / ".jts-migrate" / "journal.jsonl").read_bytes().splitlines()
    move, undo = (json.loads(line) for line in lines)
    assert isinstance(move.pop("time"), float) and isinstance(undo.pop("time"), float)  # the journal's stamp
    assert move == {
        "op": "move",
        "run": moved["run_id"],
        "src": str(src / "a.log"),
        "dst": str(dst / "a.log"),
        "size": 60,
        "sha256": hashlib.sha256(b"alpha\n" * 10).hexdigest(),
        "codec": "none",
    }
    assert undo == {"op": "rolled_back", "run": moved["run_id"], "dst": str(dst / "a.log")}
