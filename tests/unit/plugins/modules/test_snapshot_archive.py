"""Tests for jts.tiered_storage.snapshot_archive: the real tar and zstd of this host on temp dirs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest
from ansible.module_utils import basic

from ansible_collections.jts.tiered_storage.plugins.module_utils import _archive_members as am
from ansible_collections.jts.tiered_storage.plugins.module_utils import _snapshot_archive as sa
from ansible_collections.jts.tiered_storage.plugins.module_utils import _snapshot_archive_files as saf
from ansible_collections.jts.tiered_storage.plugins.modules import snapshot_archive

pytestmark = pytest.mark.skipif(
    not (shutil.which("zstd") and shutil.which("tar")), reason="needs zstd and GNU tar on this host"
)


def tree_digest(root):
    """Paths, modes, owners and content hashes of a tree: equal trees give equal digests."""
    out = []
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            content = ""
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    content = hashlib.sha256(handle.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                content = os.readlink(path)
            out.append((rel, stat.S_IMODE(st.st_mode), stat.S_IFMT(st.st_mode), st.st_uid, st.st_gid, content))
    return out


@pytest.fixture
def snap(tmp_path):
    """A small tree standing in for a mounted snapshot, and an empty backup directory."""
    src = tmp_path / "snap"
    (src / "base" / "16384").mkdir(parents=True)
    (src / "base" / "16384" / "1259").write_bytes(os.urandom(200_000))
    (src / "PG_VERSION").write_text("15\n")
    (src / "empty").mkdir()
    (src / "postmaster.opts").write_text("/usr/lib/postgresql/15/bin/postgres\n")
    os.chmod(src / "postmaster.opts", 0o600)
    os.symlink("PG_VERSION", src / "link")
    with open(src / "sparse", "wb") as handle:
        handle.truncate(8 << 20)
        handle.write(b"head")
    backups = tmp_path / "daily-backups" / "postgres"
    backups.mkdir(parents=True)
    return src, backups


def archive_args(src, backups, name="postgres_20261123T023000Z.tar.zst", **extra):
    return dict({"src": str(src), "path": str(backups / name)}, **extra)


def test_archive_verify_and_restore_give_back_the_same_tree(run_module, snap, tmp_path):
    src, backups = snap
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["changed"] is True, result
    archive = backups / "postgres_20261123T023000Z.tar.zst"
    assert result["archive"] == str(archive) and result["entries"] == 10  # the tree's 9 and the manifest
    assert result["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert sorted(os.listdir(backups)) == [archive.name, archive.name + ".sha256"]
    check = subprocess.run(["sha256sum", "-c", archive.name + ".sha256"], cwd=backups, capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip().endswith(": OK")
    assert stat.S_IMODE(archive.stat().st_mode) == 0o640

    verified = run_module(snapshot_archive, {"path": str(archive), "state": "verified"})
    assert verified["changed"] is False and verified["sha256"] == result["sha256"]

    dest = tmp_path / "restored"
    dest.mkdir()
    restored = run_module(snapshot_archive, {"path": str(archive), "state": "restored", "dest": str(dest)})
    assert restored["changed"] is True and restored["destination"] == str(dest)
    assert tree_digest(dest) == tree_digest(src), "the manifest is read and removed"
    assert restored["consistency"]["mode"] == "crash" and "crash-consistent" in restored["msg"]


def test_archiving_again_is_no_change(run_module, snap):
    src, backups = snap
    first = run_module(snapshot_archive, archive_args(src, backups))
    again = run_module(snapshot_archive, archive_args(src, backups))
    assert again["changed"] is False and again["sha256"] == first["sha256"]
    assert "exists and verifies" in again["msg"]


def test_check_mode_writes_nothing(run_module, snap, tmp_path):
    src, backups = snap
    result = run_module(snapshot_archive, archive_args(src, backups), check_mode=True)
    assert result["changed"] is True and result["msg"].startswith("would archive")
    assert os.listdir(backups) == []
    run_module(snapshot_archive, archive_args(src, backups))
    dest = tmp_path / "restored"
    dest.mkdir()
    archive = str(backups / "postgres_20261123T023000Z.tar.zst")
    check = run_module(snapshot_archive, {"path": archive, "state": "restored", "dest": str(dest)}, check_mode=True)
    assert check["changed"] is True and os.listdir(dest) == []


def test_failing_compressor_leaves_no_partial_file_and_keeps_earlier_archives(run_module, snap, tmp_path, monkeypatch):
    src, backups = snap
    run_module(snapshot_archive, archive_args(src, backups, name="postgres_20261122T023000Z.tar.zst"))
    before = {name: (backups / name).read_bytes() for name in os.listdir(backups)}
    broken = tmp_path / "zstd"
    broken.write_text(
        "#!/bin/sh\ncat > /dev/null\necho 'zstd: error 70 : Write error : No space left on device' >&2\nexit 70\n"
    )
    broken.chmod(0o755)
    monkeypatch.setattr(
        basic.AnsibleModule,
        "get_bin_path",
        lambda self, name, required=False, opt_dirs=None: str(broken) if name == "zstd" else shutil.which(name),
    )
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["failed"] is True
    assert (
        result["msg"]
        == "archiving %s: zstd exited with 70: zstd: error 70 : Write error : No space left on device" % src
    )
    assert {name: (backups / name).read_bytes() for name in os.listdir(backups)} == before


def test_failing_tar_is_reported(run_module, snap, monkeypatch, tmp_path):
    src, backups = snap
    broken = tmp_path / "tar"
    broken.write_text("#!/bin/sh\necho 'tar: ./base: Cannot open: Input/output error' >&2\nexit 2\n")
    broken.chmod(0o755)
    monkeypatch.setattr(
        basic.AnsibleModule,
        "get_bin_path",
        lambda self, name, required=False, opt_dirs=None: str(broken) if name == "tar" else shutil.which(name),
    )
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert (
        result["failed"] is True and "tar exited with 2: tar: ./base: Cannot open: Input/output error" in result["msg"]
    )
    assert os.listdir(backups) == []


def test_a_corrupted_archive_fails_verification_and_restore(run_module, snap, tmp_path):
    src, backups = snap
    run_module(snapshot_archive, archive_args(src, backups))
    archive = backups / "postgres_20261123T023000Z.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    result = run_module(snapshot_archive, {"path": str(archive), "state": "verified"})
    assert result["failed"] is True and "does not match its checksum" in result["msg"]
    dest = tmp_path / "restored"
    dest.mkdir()
    result = run_module(snapshot_archive, {"path": str(archive), "state": "restored", "dest": str(dest)})
    assert result["failed"] is True and os.listdir(dest) == []
    again = run_module(snapshot_archive, archive_args(src, backups))
    assert again["failed"] is True, "a damaged archive is reported, never overwritten"


def test_a_truncated_stream_with_a_matching_checksum_fails_the_listing(run_module, snap):
    src, backups = snap
    run_module(snapshot_archive, archive_args(src, backups))
    archive = backups / "postgres_20261123T023000Z.tar.zst"
    cut = archive.read_bytes()[:-100]
    archive.write_bytes(cut)
    (backups / (archive.name + ".sha256")).write_text("%s  %s\n" % (hashlib.sha256(cut).hexdigest(), archive.name))
    result = run_module(snapshot_archive, {"path": str(archive), "state": "verified"})
    assert result["failed"] is True and result["msg"].startswith("listing %s: zstd exited with" % archive)


def test_restore_refuses_a_non_empty_destination_unless_forced(run_module, snap, tmp_path):
    src, backups = snap
    run_module(snapshot_archive, archive_args(src, backups))
    archive = str(backups / "postgres_20261123T023000Z.tar.zst")
    dest = tmp_path / "live"
    dest.mkdir()
    (dest / "PG_VERSION").write_text("14\n")
    result = run_module(snapshot_archive, {"path": archive, "state": "restored", "dest": str(dest)})
    assert result["failed"] is True and "is not empty" in result["msg"]
    assert (dest / "PG_VERSION").read_text() == "14\n"
    forced = run_module(snapshot_archive, {"path": archive, "state": "restored", "dest": str(dest), "force": True})
    assert forced["changed"] is True and (dest / "PG_VERSION").read_text() == "15\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"path": "/tmp/x.tar.gz", "src": "/tmp"}, "archive /tmp/x.tar.gz must end in .tar.zst"),
        ({"path": "/tmp/x.tar.zst", "src": "/nonexistent"}, "source /nonexistent is not a directory"),
        (
            {"path": "/nonexistent/x.tar.zst", "src": "/tmp"},
            "the directory of the archive, /nonexistent, does not exist",
        ),
        ({"path": "/tmp/x.tar.zst", "src": "/tmp", "compression_level": 23}, "compression_level: 23 is outside 1..22"),
        ({"path": "/tmp/x.tar.zst", "src": "/tmp", "threads": -1}, "threads: -1 must be 0 or more"),
        ({"path": "/tmp/x.tar.zst"}, "state is archived but all of the following are missing: src"),
        (
            {"path": "/tmp/x.tar.zst", "state": "restored"},
            "state is restored but all of the following are missing: dest",
        ),
        ({"path": "/nonexistent/x.tar.zst", "state": "verified"}, "archive /nonexistent/x.tar.zst does not exist"),
        ({"path": "/nonexistent/x.tar.zst", "state": "restored", "dest": "/tmp"}, "does not exist"),
    ],
)
def test_bad_input(run_module, args, message):
    result = run_module(snapshot_archive, args)
    assert result["failed"] is True and message in result["msg"]


def test_existing_archive_without_checksum_is_never_overwritten(run_module, snap):
    src, backups = snap
    archive = backups / "postgres_20261123T023000Z.tar.zst"
    archive.write_bytes(b"someone's file")
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["failed"] is True and "exists without its checksum file" in result["msg"]
    assert archive.read_bytes() == b"someone's file"


def test_restore_into_a_missing_directory(run_module, snap, tmp_path):
    src, backups = snap
    run_module(snapshot_archive, archive_args(src, backups))
    archive = str(backups / "postgres_20261123T023000Z.tar.zst")
    result = run_module(snapshot_archive, {"path": archive, "state": "restored", "dest": str(tmp_path / "nope")})
    assert result["failed"] is True and result["msg"] == "restore destination %s is not a directory" % (
        tmp_path / "nope"
    )


def test_pipeline_with_a_missing_tool(tmp_path):
    with pytest.raises(sa.SnapshotArchiveError, match="cannot run /nonexistent/zstd"):
        sa.run_pipeline([["/bin/echo", "x"], ["/nonexistent/zstd"]], lambda chunk: None)


def test_ultra_levels(snap):
    src, backups = snap
    result = sa.create(
        str(src), str(backups / "u.tar.zst"), shutil.which("zstd"), shutil.which("tar"), level=20, threads=1
    )
    assert result["changed"] is True and result["entries"] == 10


# --------------------------------------------------------------------------- issue 14 case 14: temporary files


def _spy_on_the_directory(monkeypatch, backups):
    """Record the directory's entries each time the archive's bytes arrive (while it is being written)."""
    seen = []
    real = sa.run_pipeline

    def spying(commands, sink, stdin=None):
        def spy_sink(chunk):
            seen.append(sorted(os.listdir(backups)))
            sink(chunk)

        return real(commands, spy_sink, stdin)

    monkeypatch.setattr(sa, "run_pipeline", spying)
    return seen


def test_the_archive_being_written_has_no_name_in_the_directory(run_module, snap, monkeypatch):
    """The lifecycle moves daily-backups to the NAS: there must be nothing there for it to pick up."""
    src, backups = snap
    seen = _spy_on_the_directory(monkeypatch, backups)
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["changed"] is True, result
    assert seen and all(entries == [] for entries in seen), seen[:3]
    assert sorted(os.listdir(backups)) == [
        "postgres_20261123T023000Z.tar.zst",
        "postgres_20261123T023000Z.tar.zst.sha256",
    ]


def test_without_unnamed_files_the_temporary_name_is_locked_and_removed(run_module, snap, monkeypatch):
    """A filesystem without O_TMPFILE (NFS): a named temporary file, held under a lock while it lives."""
    import fcntl

    src, backups = snap
    monkeypatch.setattr(sa, "_open_unnamed", lambda dir_fd: None)
    held = []
    real = sa.run_pipeline

    def spying(commands, sink, stdin=None):
        def spy_sink(chunk):
            for name in os.listdir(backups):
                fd = os.open(backups / name, os.O_RDWR)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append((name, False))
                except BlockingIOError:
                    held.append((name, True))
                finally:
                    os.close(fd)
            sink(chunk)

        return real(commands, spy_sink, stdin)

    monkeypatch.setattr(sa, "run_pipeline", spying)
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["changed"] is True, result
    assert held and all(locked and saf.is_temporary(name) for name, locked in held), held[:3]
    assert sorted(os.listdir(backups)) == [
        "postgres_20261123T023000Z.tar.zst",
        "postgres_20261123T023000Z.tar.zst.sha256",
    ]
    verified = run_module(
        snapshot_archive, {"path": str(backups / "postgres_20261123T023000Z.tar.zst"), "state": "verified"}
    )
    assert verified["sha256"] == result["sha256"]


def test_stale_temporary_files_are_removed_by_the_next_run(run_module, snap, tmp_path):
    """What a run killed with SIGKILL left is removed by the next run; a live writer's file and others' files stay."""
    import fcntl

    src, backups = snap
    stale = [
        ".postgres_20261122T023000Z.tar.zst.k3j_9xq0.partial",  # an archive (the old mkstemp names too)
        ".postgres_20261122T023000Z.tar.zst.0a1b2c3d.sha256.partial",  # its checksum file
    ]
    for name in stale:
        (backups / name).write_bytes(b"half an archive")
    live = backups / ".postgres_20261123T010000Z.tar.zst.deadbeef.partial"
    live.write_bytes(b"being written")
    others = [".notes.partial", "mine.partial", ".x.tar.zst.short.partial"]
    for name in others:
        (backups / name).write_text("not ours")
    os.symlink("/etc/passwd", backups / ".postgres_20261121T023000Z.tar.zst.aaaaaaaa.partial")
    holder = os.open(live, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        preview = run_module(snapshot_archive, archive_args(src, backups), check_mode=True)
        assert preview["cleaned_incomplete"] == sorted(stale) and all((backups / n).exists() for n in stale)
        result = run_module(snapshot_archive, archive_args(src, backups))
    finally:
        os.close(holder)
    assert result["changed"] is True and result["cleaned_incomplete"] == sorted(stale), result
    left = sorted(os.listdir(backups))
    assert not any(n in left for n in stale)
    assert live.name in left and all(n in left for n in others)
    assert os.path.islink(backups / ".postgres_20261121T023000Z.tar.zst.aaaaaaaa.partial")
    assert "postgres_20261123T023000Z.tar.zst" in left
    # an archive that exists already: the clean-up still runs; the writer that held the lock is gone now
    (backups / stale[0]).write_bytes(b"again")
    again = run_module(snapshot_archive, archive_args(src, backups))
    assert again["changed"] is True and again["cleaned_incomplete"] == sorted([stale[0], live.name]), again
    assert not (backups / stale[0]).exists() and not live.exists()
    assert "exists and verifies" in again["msg"]


# --------------------------------------------------------------------------- issue 16: consistency members

SEG1, SEG2 = "000000010000000000000005", "000000010000000000000006"
LABEL = "START WAL LOCATION: 0/5000028 (file 000000010000000000000005)\nLABEL: jts_lvm_snapshot\n"


@pytest.fixture
def pg_snap(tmp_path):
    """A snapshot of an LV holding a PostgreSQL data directory (``15/main``, owned by nobody) while a
    backup was held, and the backup's WAL copied into ``run/wal/0`` (as lvm_snapshot leaves it)."""
    src = tmp_path / "snap"
    data = src / "15" / "main"
    (data / "pg_wal").mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    (data / "postmaster.pid").write_text("4242\n")
    (data / "pg_wal" / SEG1).write_bytes(b"incomplete in the snapshot")
    (data / "pg_wal" / "000000010000000000000004").write_bytes(b"older")
    os.chown(data, 65534, 65534)
    wal_dest = tmp_path / "run" / "wal" / "0"
    wal_dest.mkdir(parents=True)
    for name in (SEG1, SEG2):
        (wal_dest / name).write_bytes(b"complete " + name.encode())
        os.chmod(wal_dest / name, 0o600)
    backups = tmp_path / "daily-backups" / "postgres"
    backups.mkdir(parents=True)
    consistency = {
        "mode": "application",
        "method": "postgresql",
        "reason": "non-exclusive backup held on one connection across the snapshots",
        "backup_label": LABEL,
        "tablespace_map": "16400 /srv/tblspc\n",
        "start_lsn": "0/5000028",
        "stop_lsn": "0/6000100",
        "start_wal": SEG1,
        "stop_wal": SEG2,
        "wal_files": [SEG1, SEG2],
        "wal_dest": str(wal_dest),
        "data_directory": "15/main",
    }
    return src, backups, wal_dest, consistency


def members(archive):
    listing = subprocess.run(["tar", "--zstd", "-tf", str(archive)], capture_output=True, text=True, check=True)
    return [os.path.normpath(line) for line in listing.stdout.splitlines()]


def test_an_application_consistent_postgresql_archive_carries_label_map_and_wal(run_module, pg_snap, tmp_path):
    src, backups, wal_dest, consistency = pg_snap
    result = run_module(snapshot_archive, archive_args(src, backups, consistency=consistency))
    archive = backups / "postgres_20261123T023000Z.tar.zst"
    names = members(archive)
    for name in ("15/main/backup_label", "15/main/tablespace_map", "15/main/pg_wal/" + SEG1, am.MANIFEST):
        assert names.count(name) == 1, (name, names)  # never twice: the snapshot's own segment is left out
    assert "15/main/pg_wal/000000010000000000000004" in names
    assert "15/main/postmaster.pid" not in names
    manifest = result["consistency"]
    assert manifest["mode"] == "application" and manifest["wal_files"] == [SEG1, SEG2]
    assert manifest["backup_label"] is True and manifest["tablespace_map"] is True
    assert "application-consistent (postgresql)" in result["msg"]
    assert os.listdir(wal_dest.parent) == ["0"], "the staging directory is removed"
    assert sorted(os.listdir(backups)) == [archive.name, archive.name + ".sha256"]

    dest = tmp_path / "restored"
    dest.mkdir()
    restored = run_module(snapshot_archive, {"path": str(archive), "state": "restored", "dest": str(dest)})
    data = dest / "15" / "main"
    assert (data / "backup_label").read_text() == LABEL
    assert (data / "tablespace_map").read_text() == "16400 /srv/tblspc\n"
    assert (data / "pg_wal" / SEG1).read_bytes() == b"complete " + SEG1.encode()
    assert (data / "pg_wal" / SEG2).read_bytes() == b"complete " + SEG2.encode()
    for name in ("backup_label", "pg_wal/" + SEG2):
        st = os.lstat(data / name)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o600), name
    assert not (data / "postmaster.pid").exists()
    assert restored["consistency"]["mode"] == "application"
    assert "application-consistent (postgresql: backup_label and WAL in 15/main)" in restored["msg"]
    assert restored["consistency"]["stop_lsn"] == "0/6000100" and not (dest / am.MANIFEST).exists()


@pytest.mark.parametrize(
    "consistency, reason",
    [
        (None, "no consistency method configured"),
        ({"mode": "crash", "method": "none", "reason": "no consistency method configured"}, "no consistency"),
        # the WAL copy failed after pg_backup_stop: lvm_snapshot says crash but still returns the label
        ({"mode": "crash", "method": "postgresql", "reason": "the backup's WAL could not be copied"}, "WAL could not"),
    ],
)
def test_a_crash_consistent_archive_never_carries_a_backup_label(run_module, pg_snap, consistency, reason):
    src, backups, _wal_dest, full = pg_snap
    if consistency and consistency["method"] == "postgresql":
        consistency = dict(full, **consistency)
    result = run_module(snapshot_archive, archive_args(src, backups, consistency=consistency))
    names = members(backups / "postgres_20261123T023000Z.tar.zst")
    assert not [name for name in names if os.path.basename(name) in ("backup_label", "tablespace_map")], names
    assert "15/main/postmaster.pid" in names and names.count("15/main/pg_wal/" + SEG1) == 1
    assert result["consistency"]["mode"] == "crash" and reason in result["consistency"]["reason"]
    assert result["consistency"]["backup_label"] is False and result["consistency"]["wal_files"] == []


@pytest.mark.parametrize(
    "change, problem",
    [
        ("symlink_wal", "15/main/pg_wal is not a directory in this snapshot"),
        ("no_data_directory", "on none of the group's mounts"),
        ("not_in_snapshot", "is not a directory of this snapshot"),
        ("no_wal", "WAL was not copied"),
        ("dotdot", "is not below the LV"),
    ],
)
def test_a_snapshot_that_cannot_carry_the_backup_is_archived_crash_consistent_with_a_warning(
    run_module, pg_snap, change, problem, capsys
):
    src, backups, _wal_dest, consistency = pg_snap
    data = src / "15" / "main"
    if change == "symlink_wal":
        shutil.rmtree(data / "pg_wal")
        os.symlink("/var/lib/pgwal", data / "pg_wal")
    elif change == "no_data_directory":
        consistency["data_directory"] = None
    elif change == "not_in_snapshot":
        consistency["data_directory"] = "16/main"
    elif change == "no_wal":
        consistency["wal_files"] = []
    else:
        consistency["data_directory"] = "../main"
    result = run_module(snapshot_archive, archive_args(src, backups, consistency=consistency))
    assert result["consistency"]["mode"] == "crash" and problem in result["consistency"]["reason"], result
    warning = " ".join(capsys.readouterr().err.split())
    assert "postgres_20261123T023000Z.tar.zst: " in warning and problem in warning, warning
    names = members(backups / "postgres_20261123T023000Z.tar.zst")
    assert not [name for name in names if name.endswith("backup_label")], names


def test_a_tree_that_holds_the_manifests_name_is_refused_not_silently_dropped(run_module, snap):
    src, backups = snap
    (src / am.MANIFEST).write_text("the LV's own file")
    result = run_module(snapshot_archive, archive_args(src, backups))
    assert result["failed"] is True and "rename it" in result["msg"] and am.MANIFEST in result["msg"]
    assert os.listdir(backups) == []


def test_an_archive_without_our_manifest_restores_untouched_even_with_a_file_of_its_name(tmp_path):
    """An archive written before the manifest existed: an LV file named like it is LV data, never read or removed."""
    tree = tmp_path / "tree"
    data = tree / "15" / "main"
    (data / "pg_wal").mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    (data / "backup_label").write_text(LABEL)
    (data / "postmaster.pid").write_text("4242\n")
    fake = dict(am.manifest_of({"mode": "application", "method": "postgresql", "data_directory": "15/main"}))
    fake.update(backup_label=True)
    (tree / am.MANIFEST).write_text(json.dumps(fake))
    archive = tmp_path / "old_20261101T023000Z.tar.zst"
    with open(archive, "wb") as out:
        tar = subprocess.Popen(["tar", "--create", "--file=-", "--directory", str(tree), "."], stdout=subprocess.PIPE)
        subprocess.run(["zstd", "-q", "-c"], stdin=tar.stdout, stdout=out, check=True)
        assert tar.wait() == 0
    (tmp_path / (archive.name + ".sha256")).write_text(
        "%s  %s\n" % (hashlib.sha256(archive.read_bytes()).hexdigest(), archive.name)
    )
    dest = tmp_path / "restored"
    dest.mkdir()
    result = sa.restore(str(archive), str(dest), "zstd", "tar")
    assert result["consistency"] is None and "unknown" in result["msg"]
    assert json.loads((dest / am.MANIFEST).read_text())["mode"] == "application"  # the LV's file, kept
    assert (dest / "15" / "main" / "postmaster.pid").exists()


def test_a_stale_tablespace_map_of_the_tree_is_left_out_when_the_backup_has_none(run_module, pg_snap, tmp_path):
    src, backups, _wal_dest, consistency = pg_snap
    (src / "15" / "main" / "tablespace_map").write_text("16400 /stale\n")
    run_module(snapshot_archive, archive_args(src, backups, consistency=dict(consistency, tablespace_map="")))
    names = members(backups / "postgres_20261123T023000Z.tar.zst")
    assert "15/main/backup_label" in names
    assert not [n for n in names if n.endswith("tablespace_map")], names
