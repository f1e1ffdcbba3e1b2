"""Tests for jts.tiered_storage.backup_retention (module_utils/_backup_retention.py, _backup_retention_dir.py).

The pure parts with tables; the pruning on temp directories for real (the listing and removals in
forked children as in production), with the mount table given to the Pruner."""

from __future__ import annotations

import datetime
import hashlib
import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _backup_retention as br
from ansible_collections.jts.tiered_storage.plugins.module_utils import _backup_retention_dir as brd
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.modules import backup_retention

NOW = datetime.datetime(2026, 11, 28, 3, 0, 0)
DEFAULTS = dict(
    volumes=["postgres"],
    keep_last=0,
    keep_daily=0,
    keep_weekly=0,
    keep_monthly=0,
    max_age="",
    max_clock_jump_days=366,
    nas_host=None,
    nas_port=2049,
    probe_timeout=5.0,
    remove_timeout=5.0,
)


def stamp(days_ago, hour=2):
    return (NOW - datetime.timedelta(days=days_ago)).replace(hour=hour, minute=30)


def name_of(when, volume="postgres"):
    return "%s_%s.tar.zst" % (volume, when.strftime(br.STAMP_FORMAT))


def policy(**kw):
    params = dict(DEFAULTS, path="/data/warm/daily-backups", mount="/data/warm")
    params.update(kw)
    return br.build_policy(params)


def archives(days, bad=()):
    return [{"name": name_of(stamp(d)), "stamp": stamp(d), "good": d not in bad} for d in days]


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("postgres_20261123T023000Z.tar.zst", datetime.datetime(2026, 11, 23, 2, 30)),
        ("postgres_20261123T023000Z.tar.zst.sha256", None),
        ("mongodb_20261123T023000Z.tar.zst", None),
        ("postgres_x_20261123T023000Z.tar.zst", None),
        ("postgres_20261340T023000Z.tar.zst", None),
        (".postgres_20261123T023000Z.tar.zst.1a2b3c4d.partial", None),
        ("postgres_2026-11-23T023000Z.tar.zst", None),
    ],
)
def test_parse_archive_name(name, expected):
    assert br.parse_archive_name(name, "postgres") == expected


@pytest.mark.parametrize(
    "text, ok",
    [
        ("%s  postgres_1.tar.zst\n" % ("a" * 64), True),
        ("%s *postgres_1.tar.zst\n" % ("a" * 64), True),
        ("%s  postgres_2.tar.zst\n" % ("a" * 64), False),
        ("%s  postgres_1.tar.zst\n%s  postgres_1.tar.zst\n" % ("a" * 64, "b" * 64), False),
        ("not a checksum\n", False),
        ("", False),
    ],
)
def test_checksum_names(text, ok):
    assert brd.checksum_names(text, "postgres_1.tar.zst") is ok


# --------------------------------------------------------------------------- policy


@pytest.mark.parametrize(
    "change, message",
    [
        ({"path": "daily-backups"}, "path must be an absolute path"),
        ({"path": "/", "mount": "/"}, "path / is refused"),
        ({"mount": "/data/other"}, "is not below mount /data/other"),
        ({"volumes": ["../etc"]}, "is not one directory name"),
        ({"volumes": ["a/b"]}, "is not one directory name"),
        ({"volumes": ["pg", "pg"]}, "lists a name twice"),
        ({"keep_daily": -1}, "keep_daily must not be negative"),
        ({"probe_timeout": 0}, "probe_timeout must be positive"),
        ({"remove_timeout": -1}, "remove_timeout must be positive"),
        ({"max_age": "7x"}, "max_age"),
        ({"max_age": "0d"}, "max_age must be longer than 0"),
    ],
)
def test_build_policy_refuses(change, message):
    with pytest.raises(br.RetentionError, match=message.replace("/", "/")):
        policy(**change)


def test_build_policy_normalises():
    p = policy(path="/data/warm//daily-backups/", max_age="40d", mount="/data/warm/")
    assert p.path == "/data/warm/daily-backups" and p.mount == "/data/warm" and p.max_age == 40 * 86400
    assert policy(mount="/").mount == "/"


# --------------------------------------------------------------------------- plan


def test_plan_with_retention_off_removes_nothing():
    kept, removed, warnings = br.plan(archives(range(50)), policy(), NOW)
    assert removed == [] and len(kept) == 50 and warnings == []


def test_plan_keep_last_removes_the_oldest():
    kept, removed, _ = br.plan(archives(range(5)), policy(keep_last=3), NOW)
    assert removed == [name_of(stamp(4)), name_of(stamp(3))]
    assert kept == sorted(name_of(stamp(d)) for d in range(3))


def test_plan_daily_weekly_monthly_as_nas_archive_counts_them():
    items = archives(range(0, 120, 1))
    kept, removed, _ = br.plan(items, policy(keep_daily=7, keep_weekly=4, keep_monthly=3), NOW)
    from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import select_retention

    expected = select_retention([i["stamp"] for i in items], 0, 7, 4, 3, now=NOW)
    assert sorted(kept) == sorted(name_of(s) for s in expected)
    assert len(kept) + len(removed) == 120


def test_plan_max_age_removes_older_whatever_the_counts_keep():
    kept, removed, _ = br.plan(archives(range(50)), policy(keep_last=45, max_age="40d"), NOW)
    assert set(removed) == {name_of(stamp(d)) for d in range(40, 45)} | {name_of(stamp(d)) for d in range(45, 50)}
    assert name_of(stamp(39)) in kept


def test_plan_max_age_alone():
    _kept, removed, _ = br.plan(archives([1, 10, 31, 60]), policy(max_age="30d"), NOW)
    assert removed == [name_of(stamp(60)), name_of(stamp(31))]


def test_plan_never_removes_the_newest_good_archive():
    # the two newest have no valid checksum: the third, although keep_last says 1, stays
    kept, removed, _ = br.plan(archives(range(5), bad={0, 1}), policy(keep_last=1), NOW)
    assert name_of(stamp(2)) in kept and name_of(stamp(0)) in kept
    assert removed == [name_of(stamp(4)), name_of(stamp(3)), name_of(stamp(1))]


def test_plan_newest_good_survives_max_age():
    kept, removed, _ = br.plan(archives([50, 60, 70]), policy(max_age="30d"), NOW)
    assert kept == [name_of(stamp(50))] and removed == [name_of(stamp(70)), name_of(stamp(60))]


def test_plan_volume_without_a_good_archive_loses_nothing():
    kept, removed, warnings = br.plan(archives(range(5), bad=set(range(5))), policy(keep_last=1), NOW)
    assert removed == [] and len(kept) == 5
    assert "no archive has a valid checksum file" in warnings[0]


def test_plan_keeps_future_archives_without_counting_them():
    items = archives([-3, 0, 1, 2])  # one named three days after the clock
    kept, removed, _ = br.plan(items, policy(keep_last=2, max_age="1d"), NOW)
    assert name_of(stamp(-3)) in kept and name_of(stamp(0)) in kept
    assert removed == [name_of(stamp(2)), name_of(stamp(1))]


def test_plan_clock_jump_stops_the_age_limit():
    _kept, removed, warnings = br.plan(archives([400, 401, 402]), policy(max_age="30d"), NOW)
    assert removed == [] and "max_clock_jump_days 366" in warnings[0]
    _kept, removed, warnings = br.plan(archives([400, 401]), policy(max_age="30d", max_clock_jump_days=0), NOW)
    assert removed == [name_of(stamp(401))] and warnings == []


def test_plan_of_nothing():
    assert br.plan([], policy(keep_last=1), NOW) == ([], [], [])


# --------------------------------------------------------------------------- pruning on disk


def mounts_for(*points):
    return [{"mount_point": b"/", "fstype": "ext4"}] + [
        {"mount_point": os.fsencode(p), "fstype": "tmpfs"} for p in points
    ]


def write_archive(directory, when, volume="postgres", data=b"x" * 1000, checksum=True):
    directory.mkdir(parents=True, exist_ok=True)
    name = name_of(when, volume)
    (directory / name).write_bytes(data)
    if checksum:
        (directory / (name + ".sha256")).write_text("%s  %s\n" % (hashlib.sha256(data).hexdigest(), name))
    return name


@pytest.fixture
def tier(tmp_path):
    mount = tmp_path / "warm"
    backups = mount / "daily-backups"
    for d in range(6):
        write_archive(backups / "postgres", stamp(d))
    write_archive(backups / "mongodb", stamp(9), volume="mongodb")
    (backups / "postgres" / "notes.txt").write_text("keep me")
    (backups / "postgres" / ".postgres_20261101T023000Z.tar.zst.1a2b3c4d.partial").write_text("busy")
    return mount, backups


def make_pruner(mount, backups, check_mode=False, mounts=None, timed=call_with_timeout, tcp_fn=None, **params):
    values = dict(DEFAULTS, path=str(backups), mount=str(mount))
    values.update(params)
    extra = {"tcp_fn": tcp_fn} if tcp_fn else {}
    return br.Pruner(
        br.build_policy(values),
        check_mode=check_mode,
        now=NOW,
        mounts=mounts if mounts is not None else mounts_for(mount),
        timed=timed,
        **extra,
    )


def test_prune_removes_the_oldest_with_their_checksums_and_nothing_else(tier):
    mount, backups = tier
    result = make_pruner(mount, backups, volumes=["postgres", "mongodb"], keep_last=3).run()
    gone = [name_of(stamp(d)) for d in (5, 4, 3)]
    assert result["removed"] == ["postgres/" + n for n in gone]
    assert result["removed_files"] == 6 and result["removed_bytes"] == 3 * 1000 + sum(
        len("%s  %s\n" % ("0" * 64, n)) for n in gone
    )
    left = sorted(os.listdir(backups / "postgres"))
    assert ".postgres_20261101T023000Z.tar.zst.1a2b3c4d.partial" in left and "notes.txt" in left
    assert [n for n in left if n.endswith(".tar.zst")] == sorted(name_of(stamp(d)) for d in range(3))
    assert len(os.listdir(backups / "mongodb")) == 2
    assert result["changed"] and "removed 3 archive(s) (6 file(s)" in result["msg"]


def test_check_mode_lists_and_counts_but_removes_nothing(tier):
    mount, backups = tier
    before = sorted(os.listdir(backups / "postgres"))
    p = make_pruner(mount, backups, check_mode=True, keep_last=4)
    result = p.run()
    assert sorted(os.listdir(backups / "postgres")) == before
    assert result["removed"] == ["postgres/" + name_of(stamp(5)), "postgres/" + name_of(stamp(4))]
    assert result["removed_files"] == 4 and result["removed_bytes"] > 2000 and result["changed"]
    assert result["msg"].startswith("would remove 2 archive(s)")
    diff = p.diff()
    assert diff["before"].count("\n") == 6 and diff["after"].count("\n") == 4


def test_a_missing_volume_directory_is_nothing_to_do(tier):
    mount, backups = tier
    result = make_pruner(mount, backups, volumes=["clickhouse"], keep_last=1).run()
    assert result["removed"] == [] and not result["changed"]


def test_a_mount_that_is_not_mounted_prunes_nothing(tier):
    mount, backups = tier
    with pytest.raises(Skipped, match="is not mounted; nothing pruned"):
        make_pruner(mount, backups, mounts=mounts_for(), keep_last=1).run()
    assert len(os.listdir(backups / "postgres")) == 14


def test_an_unreachable_nas_prunes_nothing(tier):
    mount, backups = tier
    calls = []

    def tcp(host, port, timeout):
        calls.append((host, port))
        return False, "connection refused"

    with pytest.raises(Skipped, match="NAS nas01 is not reachable"):
        make_pruner(mount, backups, tcp_fn=tcp, nas_host="nas01", keep_last=1).run()
    assert calls == [("nas01", 2049)] and len(os.listdir(backups / "postgres")) == 14
    ok = make_pruner(mount, backups, tcp_fn=lambda h, p, t: (True, ""), nas_host="nas01", keep_last=5).run()
    assert len(ok["removed"]) == 1


def _timed_failing(which, error):
    def timed(func, args, timeout):
        if func.__name__ == which:
            raise error
        return call_with_timeout(func, args, timeout)

    return timed


@pytest.mark.parametrize(
    "error, message",
    [
        (ProbeTimeout("x"), "did not answer within 5.0s"),
        (OSError(5, "Input/output error"), "Input/output error; nothing pruned"),
        (RuntimeError("probe child died without an answer"), "probe child died"),
    ],
)
def test_a_mount_that_does_not_answer_prunes_nothing(tier, error, message):
    mount, backups = tier
    with pytest.raises(Skipped, match=message):
        make_pruner(mount, backups, timed=_timed_failing("_mount_dev", error), keep_last=1).run()
    assert len(os.listdir(backups / "postgres")) == 14


def test_a_path_on_another_mount_is_refused(tier):
    mount, backups = tier
    with pytest.raises(br.RetentionError, match=r"is on the filesystem mounted at .*daily-backups, not on"):
        make_pruner(mount, backups, mounts=mounts_for(mount, backups), keep_last=1).run()


def test_a_directory_on_another_device_is_refused(tier):
    mount, backups = tier

    def timed(func, args, timeout):
        if func.__name__ == "_mount_dev":
            return {"dev": -1, "blocks": 1}
        return call_with_timeout(func, args, timeout)

    with pytest.raises(br.RetentionError, match="is not on the filesystem of its mount"):
        make_pruner(mount, backups, timed=timed, keep_last=1).run()
    assert len(os.listdir(backups / "postgres")) == 14


def test_a_symlinked_volume_directory_is_not_followed(tier, tmp_path):
    mount, backups = tier
    elsewhere = tmp_path / "elsewhere"
    for d in range(4):
        write_archive(elsewhere, stamp(d), volume="redis")
    os.symlink(elsewhere, backups / "redis")
    with pytest.raises(br.RetentionError, match="redis is a symlink or not a directory; not followed"):
        make_pruner(mount, backups, volumes=["redis"], keep_last=1).run()
    assert len(os.listdir(elsewhere)) == 8


def test_a_symlinked_parent_is_not_followed(tier, tmp_path):
    mount, backups = tier
    os.symlink(backups, mount / "link")
    with pytest.raises(br.RetentionError, match="link is a symlink or not a directory"):
        make_pruner(mount, mount / "link", keep_last=1).run()
    assert len(os.listdir(backups / "postgres")) == 14


def test_a_symlink_with_an_archive_name_is_ignored_and_its_target_kept(tier, tmp_path):
    mount, backups = tier
    target = tmp_path / "precious"
    target.write_text("not yours")
    old = name_of(stamp(30))
    os.symlink(target, backups / "postgres" / old)
    os.symlink(target, backups / "postgres" / (name_of(stamp(0) + datetime.timedelta(hours=1))))
    result = make_pruner(mount, backups, keep_last=1).run()
    assert target.read_text() == "not yours" and os.path.islink(backups / "postgres" / old)
    assert "postgres/" + old in result["ignored"]
    assert any("not a regular file: ignored, never followed" in w for w in result["warnings"])
    assert len(result["removed"]) == 5


def test_a_checksum_file_that_is_a_symlink_does_not_make_an_archive_good(tier, tmp_path):
    mount, backups = tier
    newest = write_archive(backups / "postgres", stamp(0) + datetime.timedelta(hours=1), checksum=False)
    fake = tmp_path / "fake.sha256"
    fake.write_text("%s  %s\n" % ("a" * 64, newest))
    os.symlink(fake, backups / "postgres" / (newest + ".sha256"))
    result = make_pruner(mount, backups, keep_last=1).run()
    # the newest (no real checksum file) and the newest good one both stay
    assert sorted(result["kept"]) == sorted(["postgres/" + newest, "postgres/" + name_of(stamp(0))])
    assert os.path.islink(backups / "postgres" / (newest + ".sha256"))


@pytest.mark.parametrize(
    "which, error, message",
    [
        ("scan_volume", ProbeTimeout("x"), "listing .* did not return within 5.0s"),
        ("scan_volume", OSError(13, "Permission denied"), "listing .* failed: Permission denied"),
        ("remove_file", ProbeTimeout("x"), "removing .* did not return within 5.0s .*0 file\\(s\\) removed before"),
        ("remove_file", RuntimeError("RetentionError: boom"), "removing .*: boom"),
    ],
)
def test_a_listing_or_removal_that_fails_stops_the_run(tier, which, error, message):
    mount, backups = tier
    p = make_pruner(mount, backups, timed=_timed_failing(which, error), keep_last=1)
    with pytest.raises(br.RetentionError, match=message):
        p.run()
    assert len(os.listdir(backups / "postgres")) == 14 and p.result["removed"] == []


def test_remove_file_leaves_what_changed_since_the_listing(tmp_path):
    directory = tmp_path / "d"
    directory.mkdir()
    dev = os.stat(directory).st_dev
    assert brd.remove_file(str(directory), "gone", dev) is None
    (directory / "now-a-dir").mkdir()
    assert brd.remove_file(str(directory), "now-a-dir", dev) is None and (directory / "now-a-dir").is_dir()
    (directory / "f").write_bytes(b"12345")
    assert brd.remove_file(str(directory), "f", dev) == 5 and not (directory / "f").exists()


def test_open_dir_passes_other_errors_on(tmp_path):
    with pytest.raises(FileNotFoundError):
        brd.open_dir(str(tmp_path / "missing" / "x"))


# --------------------------------------------------------------------------- the module


def test_module_prunes_and_reports(run_module, tier, monkeypatch):
    mount, backups = tier
    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for(mount)),
    )
    result = run_module(
        backup_retention,
        {"path": str(backups), "mount": str(mount), "volumes": ["postgres"], "keep_last": 2},
        diff=True,
    )
    assert result["changed"] and len(result["removed"]) == 4 and result["removed_files"] == 8
    assert result["diff"]["after"].count("\n") == 2 and result["skipped"] is False


def test_module_warns(run_module, tier, monkeypatch, capfd):
    mount, backups = tier
    os.symlink("/etc/passwd", backups / "postgres" / name_of(stamp(40)))
    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for(mount)),
    )
    result = run_module(backup_retention, {"path": str(backups), "mount": str(mount), "volumes": ["postgres"]})
    assert not result["changed"] and result["ignored"] == ["postgres/" + name_of(stamp(40))]
    assert "is not a regular file: ignored, never followed" in capfd.readouterr().err


def test_module_refuses_bad_parameters(run_module):
    result = run_module(backup_retention, {"path": "/data/warm/x", "mount": "/srv", "volumes": ["pg"]})
    assert result["failed"] and "not below mount /srv" in result["msg"] and result["removed_files"] == 0


def test_module_skips_an_absent_mount(run_module, tier, monkeypatch):
    mount, backups = tier
    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for()),
    )
    result = run_module(
        backup_retention, {"path": str(backups), "mount": str(mount), "volumes": ["postgres"], "keep_last": 1}
    )
    assert result["skipped"] is True and not result["changed"] and result["removed_bytes"] == 0
    assert len(os.listdir(backups / "postgres")) == 14


def test_module_fails_with_what_was_removed_so_far(run_module, tier, monkeypatch):
    mount, backups = tier
    calls = []

    def timed(func, args, timeout):
        if func.__name__ == "remove_file":
            calls.append(args[1])
            if len(calls) == 3:
                raise ProbeTimeout("x")
        return call_with_timeout(func, args, timeout)

    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for(mount), timed=timed),
    )
    result = run_module(
        backup_retention, {"path": str(backups), "mount": str(mount), "volumes": ["postgres"], "keep_last": 1}
    )
    assert result["failed"] and result["removed"] == ["postgres/" + name_of(stamp(5))]
    assert result["removed_files"] == 2 and "2 file(s) removed before" in result["msg"]


def test_plan_with_only_future_archives_removes_nothing():
    kept, removed, warnings = br.plan(archives([-5, -3]), policy(keep_last=1, max_age="1d"), NOW)
    assert removed == [] and len(kept) == 2 and warnings == []


def test_no_result_has_a_path_key(run_module, tier, monkeypatch):
    """AnsibleModule.exit_json/fail_json stat a top-level ``path`` in the module's own process,
    outside every time-out: on the NAS away that hung the nightly run (found on the lab VM)."""
    mount, backups = tier
    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for()),
    )
    args = {"path": str(backups), "mount": str(mount), "volumes": ["postgres"], "keep_last": 1}
    skipped = run_module(backup_retention, args)
    refused = run_module(backup_retention, {"path": "/data/warm/x", "mount": "/srv", "volumes": ["pg"]})
    monkeypatch.setattr(
        backup_retention,
        "Pruner",
        lambda policy, check_mode: br.Pruner(policy, check_mode, now=NOW, mounts=mounts_for(mount)),
    )
    done = run_module(backup_retention, args)
    for result in (skipped, refused, done):
        assert "path" not in result and result["backup_dir"] in (str(backups), "/data/warm/x")
