"""Functional tests for nas_archive: the real module and real rsync between temp directories.

Each test runs ``python plugins/modules/nas_archive.py args.json`` as Ansible would and looks at the
trees afterwards: mirror and its delete guard, a snapshot chain sharing inodes, retention, a run
killed mid-transfer that never becomes ``latest`` and is cleaned by the next run, check mode.
The temp directories stand in for the NAS (``require_mounted: false``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import as_ansible
import pytest

pytestmark = pytest.mark.skipif(shutil.which("rsync") is None, reason="needs rsync on this host")


def module_cmd(tmp_path, args, check_mode=False):
    args = dict(args)
    args.setdefault("require_mounted", False)
    args.setdefault("lock_dir", str(tmp_path / "locks"))
    return as_ansible.module_cmd("nas_archive", tmp_path, args, check_mode)


def run_na(tmp_path, args, check_mode=False, timeout=120):
    cmd, env = module_cmd(tmp_path, args, check_mode)
    return as_ansible.module_result(cmd, env, timeout)[0]


def listing(root):
    """{relative path: (type, size, content)} of a tree, symlinks as their targets."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            if os.path.islink(path):
                out[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                out[rel] = ("dir",)
            else:
                out[rel] = ("file", Path(path).read_bytes())
    return out


@pytest.fixture
def dev(tmp_path):
    """A development tree: notebooks, datasets, a hard-linked pair, a symlink, nested directories."""
    src = tmp_path / "dev"
    (src / "notebooks").mkdir(parents=True)
    (src / "datasets" / "raw").mkdir(parents=True)
    for i in range(8):
        (src / "notebooks" / ("nb%d.ipynb" % i)).write_text('{"cells": [%d]}\n' % i)
    (src / "datasets" / "raw" / "ticks.csv").write_bytes(b"ts,px\n" + b"1,101.25\n" * 5000)
    os.link(src / "datasets" / "raw" / "ticks.csv", src / "datasets" / "ticks-link.csv")
    (src / "datasets" / "current").symlink_to("raw/ticks.csv")
    return src


# --------------------------------------------------------------------------- mirror


def test_mirror_copies_then_transfers_nothing(tmp_path, dev):
    dst = tmp_path / "nas" / "development"
    args = {"mode": "mirror", "source": str(dev), "destination": str(dst), "delete": True, "verify": True}
    first = run_na(tmp_path, args)
    assert first["changed"] is True and not first.get("failed"), first
    # 8 notebooks and ticks.csv once: its hard link is linked, not sent again
    assert first["files_transferred"] == 9 and first["verified"] is True
    assert listing(dst) == listing(dev)
    # hard links are kept as hard links, not copied twice
    assert os.stat(dst / "datasets" / "raw" / "ticks.csv").st_ino == os.stat(dst / "datasets" / "ticks-link.csv").st_ino
    again = run_na(tmp_path, args)
    assert again["changed"] is False and again["files_transferred"] == 0 and again["bytes_transferred"] == 0, again
    assert again["files_deleted"] == 0 and again["guard"]["dest_entries"] == again["guard"]["source_entries"]


def test_mirror_deletes_within_guard_and_refuses_above(tmp_path, dev):
    dst = tmp_path / "nas" / "development"
    args = {"mode": "mirror", "source": str(dev), "destination": str(dst), "delete": True}
    assert run_na(tmp_path, args)["changed"]
    # one notebook of 14 entries removed: within 20 %
    (dev / "notebooks" / "nb0.ipynb").unlink()
    result = run_na(tmp_path, args)
    assert result["changed"] and result["files_deleted"] == 1 and result["deleted"] == ["notebooks/nb0.ipynb"]
    assert not (dst / "notebooks" / "nb0.ipynb").exists()
    # the whole notebooks directory gone (8 of 13 entries): refused, nothing deleted
    before = listing(dst)
    shutil.rmtree(dev / "notebooks")
    refused = run_na(tmp_path, args)
    assert refused.get("failed") and "delete guard" in refused["msg"] and "nothing was done" in refused["msg"], refused
    assert refused["guard"]["deletions"] == 8 and refused["guard"]["dest_entries"] == 13
    assert listing(dst) == before
    # without delete the mirror only adds
    (dev / "datasets" / "new.csv").write_text("x\n")
    added = run_na(tmp_path, dict(args, delete=False))
    assert added["changed"] and added["files_transferred"] == 1 and (dst / "notebooks" / "nb1.ipynb").exists()
    # force_delete allows it for one run
    forced = run_na(tmp_path, dict(args, force_delete=True))
    assert forced["changed"] and forced["files_deleted"] == 8 and forced["guard"]["forced"] is True
    assert listing(dst) == listing(dev)


def test_mirror_refuses_empty_source(tmp_path, dev):
    dst = tmp_path / "nas" / "development"
    args = {"mode": "mirror", "source": str(dev), "destination": str(dst), "delete": True}
    assert run_na(tmp_path, args)["changed"]
    before = listing(dst)
    # an unmounted source: the mount point is an empty directory
    empty = tmp_path / "unmounted"
    empty.mkdir()
    refused = run_na(tmp_path, dict(args, source=str(empty), max_delete_percent=100, force_delete=True))
    assert refused.get("failed") and "is empty" in refused["msg"] and refused["changed"] is False, refused
    assert listing(dst) == before
    gone = run_na(tmp_path, dict(args, source=str(tmp_path / "missing")))
    assert gone.get("skipped") and gone["missing"] == "source" and "does not exist" in gone["msg"], gone
    refused_gone = run_na(tmp_path, dict(args, source=str(tmp_path / "missing"), missing="fail"))
    assert refused_gone.get("failed") and "does not exist" in refused_gone["msg"]
    assert listing(dst) == before


def test_mirror_check_mode_changes_nothing(tmp_path, dev):
    dst = tmp_path / "nas" / "development"
    args = {"mode": "mirror", "source": str(dev), "destination": str(dst), "delete": True}
    result = run_na(tmp_path, args, check_mode=True)
    assert result["changed"] is True and result["files_transferred"] == 9 and not dst.exists(), result
    run_na(tmp_path, args)
    before = listing(dst)
    (dev / "notebooks" / "nb1.ipynb").unlink()
    (dev / "notebooks" / "nb2.ipynb").write_text("changed\n")
    result = run_na(tmp_path, args, check_mode=True)
    assert result["changed"] is True and result["files_deleted"] == 1 and result["files_transferred"] == 1
    assert result["deleted"] == ["notebooks/nb1.ipynb"]
    assert listing(dst) == before


# --------------------------------------------------------------------------- snapshots


def snap_args(tmp_path, sources, **extra):
    args = {
        "mode": "snapshot",
        "sources": sources,
        "name": "configs",
        "destination": str(tmp_path / "nas" / "archives"),
    }
    args.update(extra)
    return args


@pytest.fixture
def configs(tmp_path):
    etc = tmp_path / "etc"
    (etc / "jts").mkdir(parents=True)
    (etc / "fstab").write_text("LABEL=jts-warm-storage /data/warm-storage btrfs compress=zstd:3 0 0\n")
    (etc / "jts" / "storage-health.json").write_text('{"tiers": []}\n')
    (etc / "jts" / "big.conf").write_bytes(b"# tuning\n" * 10000)
    return etc


def test_snapshot_chain_shares_inodes(tmp_path, configs):
    sources = [str(configs / "fstab"), str(configs / "jts"), str(tmp_path / "not-there")]
    args = snap_args(tmp_path, sources, ignore_missing_sources=True, verify=True)
    first = run_na(tmp_path, args)
    assert first["changed"] and first["verified"] and first["previous"] is None, first
    assert first["missing_sources"] == [str(tmp_path / "not-there")]
    time.sleep(1.1)
    (configs / "fstab").write_text("LABEL=jts-warm-storage /data/warm-storage btrfs noatime 0 0\n")
    second = run_na(tmp_path, args)
    assert second["previous"] == first["snapshot"] and second["snapshot"] != first["snapshot"]
    assert second["files_transferred"] == 1, second
    root = tmp_path / "nas" / "archives" / "configs"
    assert os.readlink(root / "latest") == os.path.basename(second["snapshot"])
    a, b = Path(first["snapshot"]), Path(second["snapshot"])
    rel_big = str(configs / "jts" / "big.conf").lstrip("/")
    rel_fstab = str(configs / "fstab").lstrip("/")
    assert os.stat(a / rel_big).st_ino == os.stat(b / rel_big).st_ino  # unchanged: one inode
    assert os.stat(a / rel_fstab).st_ino != os.stat(b / rel_fstab).st_ino  # changed: its own copy
    assert (b / rel_fstab).read_text().endswith("noatime 0 0\n")
    assert (a / rel_fstab).read_text().endswith("0 0\n") and "compress" in (a / rel_fstab).read_text()
    assert os.stat(b / rel_big).st_nlink == 2


def test_snapshot_retention(tmp_path, configs):
    root = tmp_path / "nas" / "archives" / "configs"
    root.mkdir(parents=True)
    # 40 days of daily snapshots from earlier runs, each a small tree
    for day in range(40):
        stamp = "2026-%02d-%02dT030000Z" % (9 + (day + 14) // 30, 1 + (day + 14) % 30)
        (root / stamp / "etc").mkdir(parents=True)
        (root / stamp / "etc" / "fstab").write_text("old %d\n" % day)
    os.symlink(sorted(os.listdir(root))[-1], root / "latest")
    args = snap_args(tmp_path, [str(configs / "fstab")], keep_last=2, keep_daily=5, keep_weekly=3, keep_monthly=3)
    preview = run_na(tmp_path, args, check_mode=True)
    assert len(os.listdir(root)) == 41 and preview["changed"]
    result = run_na(tmp_path, args)
    assert result["retention_removed"] == preview["retention_removed"] and result["retention_removed"], result
    kept = sorted(n for n in os.listdir(root) if n != "latest")
    assert kept == result["retention_kept"]
    # the new one + the newest 4 old days (daily 5 counts the new day), weekly and monthly picks
    assert len(kept) < 15 and os.path.basename(result["snapshot"]) in kept
    assert "2026-10-23T030000Z" in kept  # the newest old one (the previous latest)
    assert os.readlink(root / "latest") == os.path.basename(result["snapshot"])
    assert not [n for n in os.listdir(root) if n.endswith((".partial", ".deleting"))]


def test_snapshot_check_mode_changes_nothing(tmp_path, configs):
    args = snap_args(tmp_path, [str(configs / "fstab"), str(configs / "jts")])
    result = run_na(tmp_path, args, check_mode=True)
    assert result["changed"] and result["files_transferred"] == 3 and result["snapshot"], result
    assert not (tmp_path / "nas").exists()


def test_killed_run_is_never_latest_and_is_cleaned(tmp_path, configs):
    args = snap_args(tmp_path, [str(configs / "jts")])
    first = run_na(tmp_path, args)
    root = tmp_path / "nas" / "archives" / "configs"
    # a file that takes about 8 s at 1 MiB/s (random bytes, so nothing is sparse or compressible)
    with open(configs / "jts" / "model.bin", "wb") as handle:
        handle.write(os.urandom(8 << 20))
    time.sleep(1.1)
    cmd, env = module_cmd(tmp_path, dict(args, bwlimit="1024"))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        partial = None
        while time.monotonic() < deadline and partial is None:
            found = [n for n in os.listdir(root) if n.endswith(".partial")]
            if found and any(p.name.startswith(".model.bin") or p.name == "model.bin" for p in _walk(root / found[0])):
                partial = found[0]
            time.sleep(0.1)
        assert partial, "the second run never started writing"
        time.sleep(1)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert os.readlink(root / "latest") == os.path.basename(first["snapshot"])
    assert partial in os.listdir(root)
    # rsync dies with the module (PR_SET_PDEATHSIG): no process is left writing into the .partial
    # (within 3 s: the 8 MiB at 1 MiB/s would keep an orphaned rsync busy for several seconds more)
    deadline = time.monotonic() + 3
    while _writers(partial) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _writers(partial) == []
    # rsync dies with the module; until its last process is gone the destination stays locked
    deadline = time.monotonic() + 20
    while True:
        third = run_na(tmp_path, args)
        if not third.get("locked") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not third.get("failed"), third
    assert third["cleaned_incomplete"] == [partial]
    assert third["previous"] == first["snapshot"]
    assert sorted(os.listdir(root)) == sorted(
        [os.path.basename(first["snapshot"]), os.path.basename(third["snapshot"]), "latest"]
    )
    assert os.readlink(root / "latest") == os.path.basename(third["snapshot"])
    rel = str(configs / "jts" / "model.bin").lstrip("/")
    assert (Path(third["snapshot"]) / rel).read_bytes() == (configs / "jts" / "model.bin").read_bytes()


def _writers(needle):
    pids = []
    for pid in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as handle:
                if needle.encode() in handle.read():
                    pids.append(pid)
        except OSError:
            continue
    return pids


def _walk(path):
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            yield Path(dirpath) / name


def test_rsync_timeout_fails_and_leaves_no_latest(tmp_path, configs):
    with open(configs / "jts" / "model.bin", "wb") as handle:
        handle.write(os.urandom(4 << 20))
    args = snap_args(tmp_path, [str(configs / "jts")], bwlimit="512", rsync_timeout=1.5)
    started = time.monotonic()
    result = run_na(tmp_path, args)
    assert time.monotonic() - started < 20
    assert result.get("failed") and result.get("timed_out") is True and "rsync_timeout 1.5s" in result["msg"], result
    root = tmp_path / "nas" / "archives" / "configs"
    assert not (root / "latest").exists() and [n for n in os.listdir(root) if n.endswith(".partial")]


def test_unmounted_destination_is_skipped(tmp_path, configs):
    args = snap_args(tmp_path, [str(configs / "fstab")], destination_mount=str(tmp_path / "nas"))
    started = time.monotonic()
    result = run_na(tmp_path, args)
    assert result["skipped"] is True and result["changed"] is False and "is not mounted" in result["msg"], result
    assert time.monotonic() - started < 20 and not (tmp_path / "nas").exists()
    closed = run_na(tmp_path, dict(args, destination_mount=None, nas_host="127.0.0.1", nas_port=1, probe_timeout=2))
    assert closed["skipped"] is True and "127.0.0.1 is not reachable" in closed["msg"], closed


# --------------------------------------------------------------------------- issue 14 cases 4 and 5


def test_issue14_case4_empty_source_never_snapshotted(tmp_path, configs):
    """Three snapshots with keep_last 3, then three nights with the source an empty mount point."""
    args = {
        "mode": "snapshot",
        "source": str(configs / "jts"),
        "name": "jts",
        "destination": str(tmp_path / "nas" / "archives"),
        "keep_last": 3,
    }
    made = [run_na(tmp_path, args) for _night in range(3)]
    assert all(r["changed"] and not r.get("failed") for r in made), made
    root = tmp_path / "nas" / "archives" / "jts"
    before = listing(root)
    aside = tmp_path / "aside"
    shutil.move(str(configs / "jts"), str(aside))
    (configs / "jts").mkdir()  # the unmounted mount point
    for _night in range(3):
        refused = run_na(tmp_path, args)
        assert refused.get("failed") and refused["changed"] is False, refused
        assert "is empty" in refused["msg"] and "no snapshot made, retention not run" in refused["msg"]
        assert listing(root) == before
    # a few files back, most still missing: far fewer than the newest snapshot, refused
    shutil.copy(aside / "storage-health.json", configs / "jts" / "storage-health.json")
    fewer = run_na(tmp_path, args)
    assert fewer.get("failed") and "force_delete" in fewer["msg"] and fewer["guard"]["ok"] is False, fewer
    assert fewer["guard"]["reference"] == made[-1]["snapshot"] and fewer["guard"]["reference_bytes"] > 90000
    assert listing(root) == before
    # everything back: a normal night again, hard-linked to the newest snapshot
    shutil.rmtree(configs / "jts")
    shutil.move(str(aside), str(configs / "jts"))
    good = run_na(tmp_path, args)
    assert good["changed"] and not good.get("failed") and good["guard"]["ok"], good
    assert good["files_transferred"] == 0 and good["retention_removed"] == [os.path.basename(made[0]["snapshot"])]


def _archiver_night(tmp_path, args, when):
    """One run of the real archiver (real rsync) with the clock at ``when``."""
    from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_run as run
    from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import build_policy
    from ansible_collections.jts.tiered_storage.plugins.modules import nas_archive

    params = {k: v.get("default") for k, v in nas_archive.ARGUMENT_SPEC.items()}
    params.update(require_mounted=False, lock_dir=str(tmp_path / "locks"))
    params.update(args)
    return run.Archiver(build_policy(params), rsync_bin=shutil.which("rsync"), now=when).run()


def test_issue14_case5_one_run_with_the_clock_at_2036(tmp_path, configs):
    """Five good nights (keep_daily 7), one with the clock at 2036, seven good nights: real rsync."""
    import datetime

    from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import ClockError

    args = snap_args(tmp_path, [str(configs / "fstab"), str(configs / "jts")], keep_daily=7)
    root = tmp_path / "nas" / "archives" / "configs"

    def edit(day):  # the file changes each night (its mtime too: rsync compares size and mtime)
        (configs / "fstab").write_text("night %d\n" % day)
        os.utime(configs / "fstab", (1_700_000_000 + day * 86400,) * 2)

    for day in range(1, 6):
        edit(day)
        _archiver_night(tmp_path, args, datetime.datetime(2026, 11, day, 3))
    before = listing(root)
    with pytest.raises(ClockError) as exc:
        _archiver_night(tmp_path, args, datetime.datetime(2036, 1, 1, 3))
    assert "2036-01-01T03:00:00Z" in str(exc.value) and "2026-11-05T030000Z" in str(exc.value)
    assert listing(root) == before
    for day in range(7, 14):
        edit(day)
        result = _archiver_night(tmp_path, args, datetime.datetime(2026, 11, day, 3))
        assert os.path.basename(result["snapshot"]) == "2026-11-%02dT030000Z" % day
    kept = sorted(os.listdir(root))
    assert kept == ["2026-11-%02dT030000Z" % d for d in range(7, 14)] + ["latest"]
    rel = str(configs / "fstab").lstrip("/")
    # each night's snapshot holds that night's data
    assert [(root / n / rel).read_text() for n in kept[:-1]] == ["night %d\n" % d for d in range(7, 14)]


def test_issue14_case5_a_future_dated_snapshot_is_reported_and_nothing_is_lost(tmp_path, configs):
    """A snapshot named 2036 exists (an older version obeyed a wrong clock): later nights refuse, name both times."""
    import datetime

    from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import ClockError

    args = snap_args(tmp_path, [str(configs / "fstab")], keep_daily=7)
    root = tmp_path / "nas" / "archives" / "configs"
    for day in range(1, 6):
        _archiver_night(tmp_path, args, datetime.datetime(2026, 11, day, 3))
    _archiver_night(tmp_path, dict(args, max_clock_jump_days=0), datetime.datetime(2036, 1, 1, 3))
    before = listing(root)
    assert os.readlink(root / "latest") == "2036-01-01T030000Z"
    for day in range(7, 14):
        with pytest.raises(ClockError) as exc:
            _archiver_night(tmp_path, args, datetime.datetime(2026, 11, day, 3))
        assert "behind" in str(exc.value) and "2036-01-01T030000Z" in str(exc.value)
        assert "2026-11-%02dT03:00:00Z" % day in str(exc.value)
    assert listing(root) == before
