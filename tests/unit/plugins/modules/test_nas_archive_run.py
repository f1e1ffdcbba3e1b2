"""nas_archive's run and module with rsync mocked: probes, skips, the guard in action, snapshots, errors.

The fake rsync answers from a table keyed by what the call asks for (dry run, checksum, delete)
and, for a real transfer into a snapshot's ``.partial`` directory, creates that directory as rsync
would. Temp dirs stand in for the NAS (``require_mounted: false``).
"""

from __future__ import annotations

import datetime
import os
import sys
import time

import pytest
from ansible.module_utils import basic

from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_fs as fs
from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_probe as probe
from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_run as run
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import FileLock, lock_path_for
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import ClockError, build_policy
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout
from ansible_collections.jts.tiered_storage.plugins.modules import nas_archive

STATS = """
Number of files: {total} (reg: 2, dir: 1)
Number of created files: {created}
Number of deleted files: {deleted}
Number of regular files transferred: {sent}
Total file size: 300 bytes
Total transferred file size: {bytes} bytes
"""


def out(lines=(), total=3, created=0, deleted=0, sent=0, nbytes=0):
    return "\n".join(lines) + STATS.format(total=total, created=created, deleted=deleted, sent=sent, bytes=nbytes)


class FakeRsync:
    """Answers rsync calls: ``answers`` maps a kind (dry, delete-dry, real, verify) to (rc, out, err)."""

    def __init__(self, **answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv, timeout, keep_fds=()):
        assert timeout > 0 and len(keep_fds) == 1
        self.calls.append(argv)
        if "--checksum" in argv:
            kind = "verify"
        elif "--dry-run" in argv:
            kind = "delete-dry" if "--delete" in argv else "dry"
        else:
            kind = "real"
            dest = argv[-1].rstrip("/")
            if dest.endswith(".partial"):
                os.makedirs(dest)
                with open(os.path.join(dest, "f"), "w") as handle:
                    handle.write("x")
        return self.answers.get(kind, (0, out(), ""))


@pytest.fixture
def tree(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_text("a")
    dst = tmp_path / "nas"
    dst.mkdir()
    args = {
        "mode": "mirror",
        "source": str(src),
        "destination": str(dst / "mirror"),
        "require_mounted": False,
        "lock_dir": str(tmp_path / "locks"),
        "probe_timeout": 5,
    }
    return src, dst, args


@pytest.fixture
def fake(monkeypatch):
    def install(**answers):
        rsync = FakeRsync(**answers)
        monkeypatch.setattr(run, "run_timed", rsync)
        return rsync

    return install


# --------------------------------------------------------------------------- mirror


def test_mirror_reports_transfer(run_module, tree, fake):
    _src, dst, args = tree
    rsync = fake(real=(0, out([">f+++++++++ 1 a", ".d..t...... 4096 ./"], created=1, sent=1, nbytes=1), ""))
    result = run_module(nas_archive, args)
    assert result["changed"] is True and result["skipped"] is False
    assert (result["files_transferred"], result["bytes_transferred"], result["changes_count"]) == (1, 1, 2)
    assert (dst / "mirror").is_dir()  # made before rsync (timed)
    argv = rsync.calls[0]
    assert argv[0] == "/usr/bin/rsync" and "--delay-updates" in argv and "--delete" not in argv
    assert argv[-2:] == [args["source"] + "/", args["destination"] + "/"]
    assert result["msg"] == "mirror: 1 file(s), 1 B transferred, 0 deleted"


def test_mirror_second_run_unchanged(run_module, tree, fake):
    _src, dst, args = tree
    (dst / "mirror").mkdir()
    fake()
    result = run_module(nas_archive, args)
    assert result["changed"] is False and result["files_transferred"] == 0


def test_mirror_delete_within_guard_limits_rsync(run_module, tree, fake):
    _src, dst, args = tree
    (dst / "mirror").mkdir()
    dry = out(["*deleting   0 old"], total=11, deleted=1)
    rsync = fake(**{"delete-dry": (0, dry, ""), "real": (0, out(["*deleting   0 old"], total=11, deleted=1), "")})
    result = run_module(nas_archive, dict(args, delete=True))
    assert result["changed"] is True and result["files_deleted"] == 1 and result["deleted"] == ["old"]
    assert result["guard"]["ok"] and result["guard"]["dest_entries"] == 11 and result["guard"]["percent"] == 9.09
    real = rsync.calls[1]
    assert "--delete" in real and "--delete-delay" in real and "--max-delete=1" in real


def test_mirror_delete_refused_above_limit(run_module, tree, fake):
    _src, dst, args = tree
    (dst / "mirror").mkdir()
    lines = ["*deleting   0 f%d" % i for i in range(5)]
    rsync = fake(**{"delete-dry": (0, out(lines, total=6, deleted=5), "")})
    result = run_module(nas_archive, dict(args, delete=True))
    assert result.get("failed") and result["changed"] is False
    assert "5 of 10 destination entries (50.0%)" in result["msg"] and "max_delete_percent 20%" in result["msg"]
    assert result["guard"]["ok"] is False and result["files_deleted"] == 5
    assert len(rsync.calls) == 1  # only the dry run


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: seen.append(text))
    return seen


def test_mirror_delete_forced(run_module, tree, fake, warnings):
    _src, dst, args = tree
    (dst / "mirror").mkdir()
    lines = ["*deleting   0 f%d" % i for i in range(5)]
    rsync = fake(**{"delete-dry": (0, out(lines, total=6, deleted=5), ""), "real": (0, out(lines), "")})
    result = run_module(nas_archive, dict(args, delete=True, force_delete=True))
    assert result["changed"] is True and result["guard"]["forced"] is True
    assert "--max-delete=5" in rsync.calls[1]
    assert any("force_delete" in w for w in warnings)


def test_mirror_empty_source_refused_before_rsync(run_module, tree, fake):
    src, _dst, args = tree
    (src / "a").unlink()
    rsync = fake()
    result = run_module(nas_archive, dict(args, delete=True, force_delete=True))
    assert result.get("failed") and "is empty" in result["msg"] and "nothing was done" in result["msg"]
    assert rsync.calls == []


def test_mirror_check_mode_changes_nothing(run_module, tree, fake):
    _src, dst, args = tree
    rsync = fake(**{"delete-dry": (0, out([">f+++++++++ 1 a"], created=2, sent=1, nbytes=1), "")})
    result = run_module(nas_archive, dict(args, delete=True), check_mode=True)
    assert result["changed"] is True and result["files_transferred"] == 1
    assert not (dst / "mirror").exists()
    assert all("--dry-run" in c for c in rsync.calls)


def test_mirror_verify(run_module, tree, fake):
    _src, dst, args = tree
    (dst / "mirror").mkdir()
    fake(verify=(0, out([">fc........ 1 a"]), ""))
    result = run_module(nas_archive, dict(args, verify=True))
    assert result.get("failed") and "verification failed: 1 entry differ" in result["msg"]
    assert result["verified"] is False and result["verify_differences"] == ["a"]
    fake()
    assert run_module(nas_archive, dict(args, verify=True))["verified"] is True


@pytest.mark.parametrize(
    "rc, err, expect",
    [
        (23, 'rsync: [receiver] rsync_xal_set: lsetxattr("x","user.a") failed: Operation not supported', "NFSv3"),
        (23, 'rsync: [receiver] chown "/mnt/x" failed: Operation not permitted (1)', "preserve_owner"),
        (25, "Deletions stopped due to --max-delete limit", "--max-delete limit"),
        (12, "rsync error: error in rsync protocol data stream", "rsync failed (rc 12)"),
    ],
)
def test_rsync_failures(run_module, tree, fake, rc, err, expect):
    fake(real=(rc, "", err))
    result = run_module(nas_archive, tree[2])
    assert (
        result.get("failed") and expect in result["msg"] and result["rc"] == rc and result["cmd"][0] == "/usr/bin/rsync"
    )


def test_vanished_files_warn(run_module, tree, fake, warnings):
    fake(real=(24, out([">f+++++++++ 1 a"], sent=1), "file has vanished: /src/b"))
    result = run_module(nas_archive, tree[2])
    assert not result.get("failed") and any("vanished" in w for w in warnings)


def test_lock_busy(run_module, tree, fake):
    _src, _dst, args = tree
    fake()
    with FileLock(lock_path_for("nas_archive", args["destination"], lock_dir=args["lock_dir"])):
        result = run_module(nas_archive, args)
    assert result.get("failed") and result["locked"] is True and "locked by another run" in result["msg"]


def test_lock_dir_default_and_an_unsafe_lock_dir(run_module, tree, fake, tmp_path):
    assert nas_archive.ARGUMENT_SPEC["lock_dir"]["default"] == "/run/jts"
    unsafe = tmp_path / "shared-locks"
    unsafe.mkdir()
    os.chmod(unsafe, 0o777)  # noqa: S103 - anyone could plant or hold the lock file: refused
    rsync = fake()
    result = run_module(nas_archive, dict(tree[2], lock_dir=str(unsafe)))
    assert result.get("failed") and "lock_dir" in result["msg"] and "nothing was done" in result["msg"], result
    assert rsync.calls == [] and not os.path.exists(tree[2]["destination"])


# --------------------------------------------------------------------------- probes and skips


def test_skipped_when_nas_unreachable(run_module, tree, fake, monkeypatch):
    monkeypatch.setattr(probe, "tcp_probe", lambda h, p, t: (False, "no answer"))
    rsync = fake()
    result = run_module(nas_archive, dict(tree[2], nas_host="nas.lan"))
    assert result["skipped"] is True and result["changed"] is False and "NAS nas.lan is not reachable" in result["msg"]
    assert result["missing"] == "nas_host" and rsync.calls == []


def test_skipped_when_mount_missing(run_module, tree, fake):
    rsync = fake()
    result = run_module(nas_archive, dict(tree[2], destination_mount="/no/such/mount/point"))
    assert result["skipped"] is True and "/no/such/mount/point is not mounted" in result["msg"]
    assert result["missing"] == "destination_mount"
    assert rsync.calls == [] and not os.path.exists(tree[2]["destination"])


@pytest.mark.parametrize("params", [{"destination_mount": "/no/such/mount/point"}, {"nas_host": "nas.lan"}])
def test_missing_fail_fails_the_task_where_skip_would_skip(run_module, tree, fake, monkeypatch, params):
    """missing: fail means what it means for tier_migrate: a missing end fails the task, nothing done."""
    monkeypatch.setattr(probe, "tcp_probe", lambda h, p, t: (False, "no answer"))
    rsync = fake()
    result = run_module(nas_archive, dict(tree[2], missing="fail", **params))
    assert result["failed"] is True and not result.get("skipped") and "nothing was done" in result["msg"]
    assert rsync.calls == [] and not os.path.exists(tree[2]["destination"])


def test_skipped_when_destination_stalls(run_module, tree, fake, monkeypatch):
    def stalled(func, args, timeout):
        raise ProbeTimeout("no answer")

    monkeypatch.setattr(probe, "call_with_timeout", stalled)
    result = run_module(nas_archive, tree[2])
    assert result["skipped"] is True and "did not answer within 5s" in result["msg"]


def test_skipped_when_destination_on_root_fs(run_module, fake, tmp_path):
    fake()
    if os.stat(tmp_path).st_dev != os.stat("/").st_dev:
        pytest.skip("tmp_path is not on the root filesystem here")
    (tmp_path / "s").mkdir()
    args = {
        "mode": "mirror",
        "source": str(tmp_path / "s"),
        "destination": str(tmp_path / "d"),
        "lock_dir": str(tmp_path),
    }
    result = run_module(nas_archive, args)
    assert result["skipped"] is True and "root filesystem" in result["msg"]


def test_destination_mount_and_fstype(tree):
    src, dst, args = tree
    mounts = [
        {"mount_point": b"/", "fstype": "ext4"},
        {"mount_point": os.fsencode(str(dst)), "fstype": "nfs4"},
    ]
    policy = build_policy(_params(args, destination_mount=str(dst), destination_fstype="nfs"))
    archiver = run.Archiver(policy, runner=FakeRsync(), mounts=mounts)
    archiver.probe()
    assert archiver.present == [(str(src), True)]
    wrong = build_policy(_params(args, destination_mount=str(dst), destination_fstype="cifs"))
    with pytest.raises(run.NasArchiveError, match="is nfs4, expected cifs"):
        run.Archiver(wrong, runner=FakeRsync(), mounts=mounts).probe()
    elsewhere = [{"mount_point": b"/", "fstype": "ext4"}, {"mount_point": b"/mnt/other", "fstype": "nfs"}]
    other = build_policy(_params(args, destination_mount="/mnt/other"))
    with pytest.raises(run.NasArchiveError, match="is not on the filesystem mounted at /mnt/other"):
        run.Archiver(other, runner=FakeRsync(), mounts=elsewhere).probe()
    srcmount = build_policy(_params(args, source_mount="/mnt/other"))
    with pytest.raises(run.NasArchiveError, match="source looks unmounted"):
        run.Archiver(srcmount, runner=FakeRsync(), mounts=elsewhere).probe()


def test_source_errors(run_module, tree, fake, tmp_path):
    fake()
    result = run_module(nas_archive, dict(tree[2], source=str(tmp_path / "gone")))
    assert (
        result["skipped"] is True and result["missing"] == "source" and "does not exist (not mounted?)" in result["msg"]
    )
    result = run_module(nas_archive, dict(tree[2], source=str(tmp_path / "gone"), missing="fail"))
    assert result.get("failed") and "does not exist (not mounted?)" in result["msg"]
    os.mkfifo(tmp_path / "fifo")
    result = run_module(nas_archive, dict(tree[2], source=str(tmp_path / "fifo")))
    assert result.get("failed") and "neither a directory nor a regular file" in result["msg"]
    (tmp_path / "nas" / "file").write_text("x")
    result = run_module(nas_archive, dict(tree[2], destination=str(tmp_path / "nas" / "file")))
    assert result.get("failed") and "is not a directory" in result["msg"]


def test_argument_errors(run_module, tree):
    _src, _dst, args = tree
    result = run_module(nas_archive, dict(args, sources=["/a"]))
    assert result.get("failed") and "mutually exclusive" in result["msg"]
    result = run_module(nas_archive, {k: v for k, v in args.items() if k != "source"})
    assert result.get("failed") and "one of the following is required: source, sources" in result["msg"]
    result = run_module(nas_archive, dict(args, max_delete_percent=150))
    assert result.get("failed") and "max_delete_percent must lie in 0..100" in result["msg"]
    result = run_module(nas_archive, dict(args, mode="copy"))
    assert result.get("failed") and "value of mode must be one of" in result["msg"]


# --------------------------------------------------------------------------- snapshots


def _params(args, **extra):
    params = {k: v.get("default") for k, v in nas_archive.ARGUMENT_SPEC.items()}
    params.update(args)
    params.update(extra)
    return params


def test_snapshot_chain_latest_and_retention(tree, tmp_path):
    _src, dst, args = tree
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_last=2)
    runs = []
    for day in range(3):
        rsync = FakeRsync(real=(0, out([">f+++++++++ 1 f"], sent=1, nbytes=1), ""))
        now = datetime.datetime(2026, 11, 20 + day, 3, 0, 0)
        result = run.Archiver(build_policy(_params(base)), runner=rsync, now=now).run()
        runs.append((result, rsync))
    root = dst / "cfg"
    assert sorted(os.listdir(root)) == ["2026-11-21T030000Z", "2026-11-22T030000Z", "latest"]
    assert os.readlink(root / "latest") == "2026-11-22T030000Z"
    first, _second, third = (r for r, _ in runs)
    assert first["previous"] is None and not any(a.startswith("--link-dest") for a in runs[0][1].calls[0])
    # the guard's dry run against the newest snapshot, then the transfer hard-linked to it
    assert runs[1][1].calls[0][-1] == str(root / "2026-11-20T030000Z") + "/" and "--dry-run" in runs[1][1].calls[0]
    assert "--link-dest=%s" % (root / "2026-11-20T030000Z") in runs[1][1].calls[1]
    assert runs[1][1].calls[1][-1] == str(root / "2026-11-21T030000Z.partial") + "/"
    assert third["retention_removed"] == ["2026-11-20T030000Z"]
    assert third["retention_kept"] == ["2026-11-21T030000Z", "2026-11-22T030000Z"]
    assert third["snapshot"] == third["latest"] == str(root / "2026-11-22T030000Z") and third["changed"]


def test_snapshot_cleans_leftovers_and_keeps_unknown(tree):
    _src, dst, args = tree
    root = dst / "cfg"
    (root / "2026-11-20T030000Z").mkdir(parents=True)
    (root / "2026-11-21T030000Z.partial" / "deep").mkdir(parents=True)
    os.chmod(root / "2026-11-21T030000Z.partial" / "deep", 0o500)
    (root / ".latest.tmp").symlink_to("2026-11-21T030000Z.partial")
    (root / "2026-11-19T030000Z.deleting" / "half").mkdir(parents=True)  # a removal cut short
    (root / "notes.txt").write_text("mine")
    os.symlink("2026-11-20T030000Z", root / "latest")
    policy = build_policy(_params(args, mode="snapshot", destination=str(dst), name="cfg"))
    archiver = run.Archiver(policy, runner=FakeRsync(), now=datetime.datetime(2026, 11, 22))
    result = archiver.run()
    assert sorted(result["cleaned_incomplete"]) == [
        ".latest.tmp",
        "2026-11-19T030000Z.deleting",
        "2026-11-21T030000Z.partial",
    ]
    assert sorted(os.listdir(root)) == ["2026-11-20T030000Z", "2026-11-22T000000Z", "latest", "notes.txt"]
    assert result["unknown_entries"] == ["notes.txt"] and any("notes.txt" in w for w in result["warnings"])


def test_snapshot_check_mode(tree):
    _src, dst, args = tree
    root = dst / "cfg"
    for day in (1, 2, 3):
        (root / ("2026-11-0%dT030000Z" % day)).mkdir(parents=True)
    (root / "2026-11-04T030000Z.partial").mkdir()
    policy = build_policy(_params(args, mode="snapshot", destination=str(dst), name="cfg", keep_last=1))
    rsync = FakeRsync(dry=(0, out([">f+++++++++ 1 a"], sent=1, nbytes=1), ""))
    before = sorted(os.listdir(root))
    result = run.Archiver(policy, runner=rsync, check_mode=True, now=datetime.datetime(2026, 11, 5)).run()
    assert sorted(os.listdir(root)) == before
    assert result["changed"] and result["snapshot"] == str(root / "2026-11-05T000000Z")
    assert result["retention_removed"] == ["2026-11-01T030000Z", "2026-11-02T030000Z", "2026-11-03T030000Z"]
    assert result["cleaned_incomplete"] == ["2026-11-04T030000Z.partial"] and result["files_transferred"] == 1
    assert all("--dry-run" in c for c in rsync.calls)


def test_snapshot_skip_unchanged(tree):
    _src, dst, args = tree
    root = dst / "cfg"
    (root / "2026-11-01T030000Z").mkdir(parents=True)
    (root / "2026-11-01T030000Z" / "a").write_text("a")
    policy = build_policy(_params(args, mode="snapshot", destination=str(dst), name="cfg", skip_unchanged=True))
    result = run.Archiver(policy, runner=FakeRsync()).run()
    assert result["unchanged"] is True and result["snapshot"] is None
    assert os.readlink(root / "latest") == "2026-11-01T030000Z" and result["changed"]  # latest was missing
    again = run.Archiver(policy, runner=FakeRsync()).run()
    assert again["changed"] is False
    changed = FakeRsync(**{"delete-dry": (0, out([">f.st...... 1 a"]), "")})
    third = run.Archiver(policy, runner=changed).run()
    assert third["unchanged"] is False and third["snapshot"] is not None


def test_snapshot_verify_failure_is_not_latest(tree):
    _src, dst, args = tree
    policy = build_policy(_params(args, mode="snapshot", destination=str(dst), name="cfg", verify=True))
    rsync = FakeRsync(verify=(0, out([">fc........ 1 f"]), ""))
    with pytest.raises(run.NasArchiveError, match="verification failed"):
        run.Archiver(policy, runner=rsync, now=datetime.datetime(2026, 11, 1)).run()
    assert os.listdir(dst / "cfg") == ["2026-11-01T000000Z.partial"]


def test_snapshot_missing_sources(tree, tmp_path):
    src, dst, args = tree
    params = _params(
        args, mode="snapshot", source=None, sources=[str(src), str(tmp_path / "gone")], name="c", destination=str(dst)
    )
    params["ignore_missing_sources"] = True
    rsync = FakeRsync()
    result = run.Archiver(build_policy(params), runner=rsync).run()
    assert result["missing_sources"] == [str(tmp_path / "gone")] and "--relative" in rsync.calls[0]
    assert rsync.calls[0][-2] == str(src)
    params["sources"] = [str(tmp_path / "gone")]
    with pytest.raises(run.NasArchiveError, match="none of the sources exists"):
        run.Archiver(build_policy(params), runner=FakeRsync()).run()


def test_fs_timeout_is_an_error(tree, monkeypatch):
    _src, _dst, args = tree
    policy = build_policy(_params(args))
    archiver = run.Archiver(policy, runner=FakeRsync())

    def stalled(func, a, timeout):
        raise ProbeTimeout("x")

    monkeypatch.setattr(run, "call_with_timeout", stalled)
    with pytest.raises(run.NasArchiveError, match="makedirs on /x did not return within 5s"):
        archiver._fs(fs._makedirs, "/x")


# --------------------------------------------------------------------------- the timed runner


def test_run_timed_kills_on_timeout():
    started = time.monotonic()
    with pytest.raises(run.RsyncTimeout) as exc:
        run.run_timed([sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert time.monotonic() - started < 10
    assert exc.value.details["timed_out"] is True and "rsync_timeout 0.5s" in str(exc.value)


def test_run_timed_returns_output():
    rc, stdout, stderr = run.run_timed([sys.executable, "-c", "import sys; print('ok'); sys.exit(3)"], 10)
    assert (rc, stdout.strip(), stderr) == (3, "ok", "")


# --------------------------------------------------------------------------- issue 14 case 4: an empty source


def _night(base, when, runner=None, check_mode=False):
    return run.Archiver(
        build_policy(_params(base)), runner=runner or FakeRsync(), now=when, check_mode=check_mode
    ).run()


def _names(root):
    return sorted(os.listdir(root))


def test_issue14_case4_an_empty_source_is_never_snapshotted(run_module, tree):
    """Three daily snapshots with keep_last 3, then the source is an empty mount point for three nights."""
    src, dst, args = tree
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_last=3)
    for day in (1, 2, 3):
        _night(base, datetime.datetime(2026, 11, day, 3))
    root = dst / "cfg"
    with_data = _names(root)
    assert with_data == ["2026-11-01T030000Z", "2026-11-02T030000Z", "2026-11-03T030000Z", "latest"]
    (src / "a").unlink()  # unmounted: the mount point is an empty directory
    for day in (4, 5, 6):
        rsync = FakeRsync()
        with pytest.raises(run.NasArchiveError) as exc:
            _night(base, datetime.datetime(2026, 11, day, 3), runner=rsync)
        assert "is empty" in str(exc.value) and "no snapshot made, retention not run" in str(exc.value)
        assert exc.value.details["guard"]["ok"] is False and exc.value.details["retention_removed"] == []
        assert rsync.calls == []  # refused before rsync looks at anything
        assert _names(root) == with_data
    assert os.readlink(root / "latest") == "2026-11-03T030000Z"
    # the module fails (not skipped, not changed), even with force_delete
    result = run_module(nas_archive, dict(base, force_delete=True, max_delete_percent=100))
    assert result.get("failed") and result["changed"] is False and "is empty" in result["msg"], result
    assert result["guard"]["ok"] is False and _names(root) == with_data


def test_issue14_case4_the_newest_snapshot_with_data_survives_empty_ones(tree, warnings):
    """Empty snapshots made by an older version during an outage: retention keeps the last one with data."""
    _src, dst, args = tree
    root = dst / "cfg"
    for day in (1, 2, 3):
        (root / ("2026-11-0%dT030000Z" % day)).mkdir(parents=True)
        (root / ("2026-11-0%dT030000Z" % day) / "f").write_text("data %d" % day)
    for day in (4, 5, 6):
        (root / ("2026-11-0%dT030000Z" % day)).mkdir()
    os.symlink("2026-11-06T030000Z", root / "latest")
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_last=3)
    rsync = FakeRsync()
    result = _night(base, datetime.datetime(2026, 11, 7, 3), runner=rsync)
    assert "2026-11-03T030000Z" in result["retention_kept"], result
    assert result["retention_removed"] == ["2026-11-01T030000Z", "2026-11-02T030000Z", "2026-11-04T030000Z"]
    assert (root / "2026-11-03T030000Z" / "f").read_text() == "data 3"
    # compared with and hard-linked to the newest snapshot that holds data, not the empty newest
    reference = str(root / "2026-11-03T030000Z")
    assert result["guard"]["reference"] == reference and result["previous"] == str(root / "2026-11-06T030000Z")
    assert rsync.calls[0][-1] == reference + "/" and "--dry-run" in rsync.calls[0]
    assert "--link-dest=" + reference in rsync.calls[1]
    assert any("empty" in w and "2026-11-06T030000Z" in w for w in result["warnings"])


def test_snapshot_guard_far_fewer_entries_or_bytes(tree):
    _src, dst, args = tree
    root = dst / "cfg"
    (root / "2026-11-01T030000Z").mkdir(parents=True)
    (root / "2026-11-01T030000Z" / "big").write_bytes(b"x" * 100_000)
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_last=1)
    # 8 of the newest snapshot's 10 entries are gone from the source
    lines = ["*deleting   0 f%d" % i for i in range(8)]
    dry = (0, out(lines, total=3, deleted=8), "")
    with pytest.raises(run.NasArchiveError) as exc:
        _night(base, datetime.datetime(2026, 11, 2, 3), runner=FakeRsync(**{"delete-dry": dry}))
    assert "8 of the 10 entries" in str(exc.value) and "force_delete" in str(exc.value)
    assert _names(root) == ["2026-11-01T030000Z"]
    # as many entries, but the source holds 300 bytes where the newest snapshot held 100000
    with pytest.raises(run.NasArchiveError) as exc:
        _night(base, datetime.datetime(2026, 11, 2, 3))
    assert "300 bytes" in str(exc.value) and "100000" in str(exc.value)
    verdict = exc.value.details["guard"]
    assert (verdict["reference_bytes"], verdict["source_bytes"], verdict["ok"]) == (100_000, 300, False)
    # check mode says the same
    with pytest.raises(run.NasArchiveError, match="bytes"):
        _night(base, datetime.datetime(2026, 11, 2, 3), check_mode=True)
    # force_delete allows it for one run, with a warning
    result = _night(dict(base, force_delete=True), datetime.datetime(2026, 11, 2, 3))
    assert result["guard"]["forced"] is True and result["snapshot"] == str(root / "2026-11-02T030000Z")
    assert any("force_delete" in w for w in result["warnings"])


# --------------------------------------------------------------------------- issue 14 case 5: a wrong clock


def test_issue14_case5_one_run_with_the_clock_at_2036(tree):
    """Five good nights with keep_daily 7, one night with the clock at 2036, then seven good nights."""
    _src, dst, args = tree
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_daily=7)
    root = dst / "cfg"
    for day in range(1, 6):
        _night(base, datetime.datetime(2026, 11, day, 3))
    before = _names(root)
    rsync = FakeRsync()
    with pytest.raises(ClockError) as exc:  # the night of 11-06: the clock says 2036
        _night(base, datetime.datetime(2036, 1, 1, 3), runner=rsync)
    assert "2036-01-01T03:00:00Z" in str(exc.value) and "2026-11-05T030000Z" in str(exc.value)
    assert exc.value.details["clock"]["problem"] == "ahead" and rsync.calls == []
    assert _names(root) == before
    for day in range(7, 14):
        when = datetime.datetime(2026, 11, day, 3)
        result = _night(base, when)
        assert result["snapshot"] == str(root / ("2026-11-%02dT030000Z" % day))
        # never the previous night's snapshot
        assert "2026-11-%02dT030000Z" % (day - 1) not in result["retention_removed"]
    assert _names(root) == ["2026-11-%02dT030000Z" % d for d in range(7, 14)] + ["latest"]


def test_issue14_case5_a_future_dated_snapshot_stops_the_runs_and_loses_nothing(tree):
    """The 2036 snapshot exists (an older version obeyed the clock): later runs refuse, name both times."""
    _src, dst, args = tree
    root = dst / "cfg"
    names = ["2026-11-0%dT030000Z" % d for d in range(1, 6)] + ["2036-01-01T030000Z"]
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / "f").write_text(name)
    os.symlink("2036-01-01T030000Z", root / "latest")
    base = dict(args, mode="snapshot", destination=str(dst), name="cfg", keep_daily=7)
    for day in range(7, 14):
        rsync = FakeRsync()
        with pytest.raises(ClockError) as exc:
            _night(base, datetime.datetime(2026, 11, day, 3), runner=rsync)
        msg = str(exc.value)
        assert "2026-11-%02dT03:00:00Z" % day in msg and "2036-01-01T030000Z" in msg and "behind" in msg
        assert rsync.calls == [] and exc.value.details["retention_removed"] == []
    assert _names(root) == [*names, "latest"]


def test_tree_size_counts_links_without_following_them(tmp_path):
    snap = tmp_path / "snap"
    (snap / "etc" / "jts").mkdir(parents=True)
    (snap / "etc" / "fstab").write_bytes(b"x" * 100)
    (snap / "etc" / "jts" / "a.conf").write_bytes(b"y" * 50)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "huge").write_bytes(b"z" * 100_000)
    (snap / "etc" / "elsewhere").symlink_to(outside)
    # etc, etc/jts, etc/fstab, etc/jts/a.conf, etc/elsewhere (counted by its own size, never entered)
    assert fs._tree_size(str(snap)) == [5, 150 + len(str(outside))]
    assert fs._has_entries(str(snap)) is True
    (tmp_path / "empty").mkdir()
    assert fs._has_entries(str(tmp_path / "empty")) is False
    with pytest.raises(OSError):
        fs._tree_size(str(snap / "etc" / "elsewhere"))  # the snapshot itself a link: refused
