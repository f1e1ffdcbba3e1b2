"""Module-level tests for jts.tiered_storage.lvm_snapshot with LVM mocked.

The fixtures under fixtures/lvm_snapshot/ are LVM 2.03 (Debian 12) JSON reports written in the
exact shape ``lvs/vgs --reportformat json --units b --nosuffix`` prints: every value a string.
"""

from __future__ import annotations

import datetime
import json
import types

import pytest
from ansible.module_utils.basic import AnsibleModule
from lvm_fake import NOW, STAMP, VG_NOT_FOUND, FakeLvm, fixture, report

from ansible_collections.jts.tiered_storage.plugins.modules import lvm_snapshot


@pytest.fixture
def lvm(monkeypatch, run_module):
    monkeypatch.setattr(lvm_snapshot, "time", types.SimpleNamespace(time=lambda: NOW))

    def call(args, fake=None, check_mode=False, diff=False):
        fake = fake or FakeLvm()
        result = run_module(
            lvm_snapshot, dict({"vg": "vg_jts"}, **args), commands=fake, check_mode=check_mode, diff=diff
        )
        return result, fake

    return call


SET = [{"lv": "postgres", "size": "5G"}, {"lv": "clickhouse", "size": "10G"}, {"lv": "mongodb", "size": "1%"}]


# -- state=present ------------------------------------------------------------------------------


def test_creates_the_whole_set_with_extent_rounded_sizes(lvm):
    result, fake = lvm({"origins": SET}, diff=True)
    assert result["changed"] is True
    names = [item["name"] for item in result["created"]]
    assert names == [
        "jts_snap_postgres_" + STAMP,
        "jts_snap_clickhouse_" + STAMP,
        "jts_snap_mongodb_" + STAMP,
    ]
    assert fake.issued("lvcreate")[0] == [
        "/usr/bin/lvcreate",
        "--snapshot",
        "--name",
        "jts_snap_postgres_" + STAMP,
        "--extents",
        "1280",
        "vg_jts/postgres",
    ]
    # 1% of 200 GiB = 2147483648 bytes = 512 extents of 4 MiB
    assert [item["extents"] for item in result["created"]] == [1280, 2560, 512]
    assert result["needed_bytes"] == (1280 + 2560 + 512) * 4194304
    assert result["missing_bytes"] == 0 and result["vg_free_bytes"] == 51200 * 4194304
    assert result["created"][0]["path"] == "/dev/vg_jts/jts_snap_postgres_" + STAMP
    assert result["created"][0]["timestamp"] == STAMP
    assert result["diff"]["after"].count("\n") == 3 and result["diff"]["before"] == ""
    assert fake.issued("lvs")[0][:6] == ["/usr/bin/lvs", "--reportformat", "json", "--units", "b", "--nosuffix"]
    assert "lv_snapshot_invalid" in fake.issued("lvs")[0][-2]


def test_percentage_size_rounds_up_to_a_whole_extent(lvm):
    result, _ = lvm({"origins": [{"lv": "postgres", "size": "0.0001%"}]})
    assert result["created"][0]["extents"] == 1


def test_check_mode_reports_and_creates_nothing(lvm):
    result, fake = lvm({"origins": SET, "pre_hook": ["/bin/false"]}, check_mode=True)
    assert result["changed"] is True and len(result["created"]) == 3
    assert "would create 3 snapshot(s)" in result["msg"]
    assert fake.issued("lvcreate") == [] and fake.issued("timeout") == []


def test_too_little_room_creates_none_and_says_how_much_is_missing(lvm):
    result, fake = lvm({"origins": SET}, fake=FakeLvm(vgs="vgs_vg_jts_full.json"))
    assert result["failed"] is True
    assert fake.issued("lvcreate") == []
    assert result["missing_bytes"] == (4352 - 3000) * 4194304
    assert "VG vg_jts has 11.7 GiB free" in result["msg"]
    assert "needs 17.0 GiB: 5.3 GiB missing; no snapshot created" in result["msg"]


def test_too_little_room_also_in_check_mode(lvm):
    result, _ = lvm({"origins": SET}, fake=FakeLvm(vgs="vgs_vg_jts_full.json"), check_mode=True)
    assert result["failed"] is True and "missing" in result["msg"]


def test_failed_lvcreate_rolls_back_the_ones_made_in_this_call(lvm):
    fake = FakeLvm(
        fail={("lvcreate", "vg_jts/clickhouse"): (5, "", "  Insufficient free space: 2560 extents needed\n")}
    )
    result, fake = lvm({"origins": SET, "post_hook": ["/usr/local/bin/thaw"]}, fake=fake)
    assert result["failed"] is True
    assert "lvcreate of vg_jts/jts_snap_clickhouse_%s (snapshot of clickhouse) failed (rc 5)" % STAMP in result["msg"]
    assert "rolled back the 1 snapshot(s) created in this call" in result["msg"]
    assert fake.issued("lvremove") == [["/usr/bin/lvremove", "--force", "vg_jts/jts_snap_postgres_" + STAMP]]
    assert [item["name"] for item in result["rolled_back"]] == ["jts_snap_postgres_" + STAMP]
    assert result["created"] == [] and result["changed"] is False
    assert len(fake.issued("lvcreate")) == 2, "mongodb must not be attempted after the failure"
    assert result["hooks"]["post"]["rc"] == 0, "the post-hook runs even when creation failed"


def test_rollback_that_cannot_remove_reports_what_is_left(lvm):
    fake = FakeLvm(
        fail={
            ("lvcreate", "vg_jts/mongodb"): (5, "", "  device-mapper: create ioctl failed\n"),
            ("lvremove", "vg_jts/jts_snap_clickhouse_" + STAMP): (5, "", "  Logical volume in use.\n"),
        }
    )
    result, fake = lvm({"origins": SET}, fake=fake)
    assert result["failed"] is True and result["changed"] is True
    assert "could NOT remove jts_snap_clickhouse_" + STAMP in result["msg"]
    assert [item["name"] for item in result["created"]] == ["jts_snap_clickhouse_" + STAMP]
    assert result["created"][0]["error"] == "Logical volume in use."


def test_hooks_run_around_the_set(lvm):
    result, fake = lvm(
        {"origins": SET[:1], "pre_hook": ["/usr/bin/psql", "-c", "CHECKPOINT"], "post_hook": ["/bin/true"]}
    )
    tools = [name for name, _ in fake.calls]
    assert tools.index("timeout") < tools.index("lvcreate") < len(tools) - 1 and tools[-1] == "timeout"
    assert fake.issued("timeout")[0] == [
        "/usr/bin/timeout",
        "--kill-after=10",
        "300",
        "/usr/bin/psql",
        "-c",
        "CHECKPOINT",
    ]
    assert result["hooks"]["pre"] == {
        "cmd": ["/usr/bin/psql", "-c", "CHECKPOINT"],
        "rc": 0,
        "stdout": "hook ok\n",
        "stderr": "",
    }


def test_failing_pre_hook_means_no_snapshot(lvm):
    fake = FakeLvm(hook={"/usr/bin/psql": (2, "", "psql: connection refused\n")})
    result, fake = lvm({"origins": SET, "pre_hook": ["/usr/bin/psql", "-c", "CHECKPOINT"]}, fake=fake)
    assert result["failed"] is True and result["changed"] is False
    assert result["msg"] == "pre_hook /usr/bin/psql failed (rc 2): psql: connection refused; no snapshot created"
    assert fake.issued("lvcreate") == [] and result["created"] == []
    assert result["hooks"]["pre"]["rc"] == 2


def test_pre_hook_time_out_means_no_snapshot(lvm):
    fake = FakeLvm(hook={"/usr/local/bin/slow": (124, "", "")})
    result, fake = lvm({"origins": SET, "pre_hook": ["/usr/local/bin/slow"], "hook_timeout": 5}, fake=fake)
    assert result["failed"] is True
    assert result["msg"] == "pre_hook /usr/local/bin/slow did not finish within 5s and was stopped; no snapshot created"
    assert fake.issued("timeout")[0][:3] == ["/usr/bin/timeout", "--kill-after=10", "5"]
    assert fake.issued("lvcreate") == []


def test_failing_post_hook_fails_but_keeps_the_snapshots(lvm):
    fake = FakeLvm(hook={"/usr/local/bin/thaw": (137, "", "")})
    result, fake = lvm({"origins": SET[:2], "post_hook": ["/usr/local/bin/thaw"]}, fake=fake)
    assert result["failed"] is True and result["changed"] is True
    assert "post_hook /usr/local/bin/thaw did not finish" in result["msg"]
    assert "the snapshots were created and are kept: jts_snap_postgres_" + STAMP in result["msg"]
    assert len(result["created"]) == 2 and fake.issued("lvremove") == []


def test_failing_post_hook_after_failed_creation_reports_both(lvm):
    fake = FakeLvm(
        fail={("lvcreate", "vg_jts/postgres"): (5, "", "  snapshot: Required device-mapper target(s) not detected\n")},
        hook={"/usr/local/bin/thaw": (1, "", "thaw failed\n")},
    )
    result, _ = lvm({"origins": SET, "post_hook": ["/usr/local/bin/thaw"]}, fake=fake)
    assert "Required device-mapper target(s) not detected" in result["msg"]
    assert "; and post_hook /usr/local/bin/thaw failed (rc 1): thaw failed" in result["msg"]
    assert result["rolled_back"] == []


def test_a_name_that_exists_already_is_refused(lvm, monkeypatch):
    monkeypatch.setattr(
        lvm_snapshot,
        "time",
        types.SimpleNamespace(
            time=lambda: datetime.datetime(2026, 11, 22, 1, 30, tzinfo=datetime.timezone.utc).timestamp()
        ),
    )
    result, fake = lvm({"origins": [{"lv": "postgres", "size": "5G"}]})
    assert result["failed"] is True
    assert (
        result["msg"]
        == "LV vg_jts/jts_snap_postgres_20261122T013000Z already exists: a set with this prefix was taken in this second"
    )
    assert fake.issued("lvcreate") == []


@pytest.mark.parametrize(
    ("args", "fake", "message"),
    [
        ({"vg": "vg_nope", "origins": SET}, FakeLvm(vgs=VG_NOT_FOUND), "VG vg_nope not found"),
        ({"origins": [{"lv": "nosuch", "size": "1G"}]}, None, "LV vg_jts/nosuch not found: no such origin"),
        ({"origins": [{"lv": "postgres", "size": "5X"}]}, None, "origins[postgres].size: '5X' is not a size"),
        ({"origins": [{"lv": "postgres", "size": "101%"}]}, None, "origins[postgres].size: '101%' is outside 0..100"),
        ({"origins": [{"lv": "postgres", "size": "0"}]}, None, "origins[postgres].size: '0' must be more than zero"),
        ({"origins": [{"lv": "postgres"}]}, None, "origins[postgres].size is required with state=present"),
        (
            {"origins": [{"lv": "postgres", "size": "1G"}, {"lv": "postgres", "size": "2G"}]},
            None,
            "postgres is listed twice",
        ),
        ({"origins": [{"lv": "bad/name", "size": "1G"}]}, None, "origins: 'bad/name' is not a valid LVM name"),
        ({"origins": []}, None, "origins must list at least one LV with state=present (VG vg_jts)"),
        (
            {"origins": [{"lv": "jts_snap_postgres_20261122T013000Z", "size": "1G"}]},
            None,
            "cannot be a snapshot origin",
        ),
        ({"origins": SET, "prefix": ""}, None, "prefix must not be empty"),
        ({"origins": SET, "prefix": "-x"}, None, "prefix: '-x' must not start with '-'"),
        ({"origins": SET, "prefix": "snapshot_"}, None, "starts with 'snapshot', which LVM reserves"),
        ({"origins": SET, "prefix": "x_mimage_"}, None, "contains '_mimage', which LVM reserves"),
        ({"origins": SET, "prefix": "x" * 120}, None, "is longer than 127 characters"),
        ({"vg": "vg jts", "origins": SET}, None, "vg: 'vg jts' is not a valid LVM name"),
        ({"state": "pruned", "keep": -1}, None, "keep: -1 must be 0 or more"),
        ({"state": "pruned", "max_age": "7x"}, None, "max_age: '7x' is not an age"),
        ({"origins": SET, "hook_timeout": 0}, None, "hook_timeout: 0 must be more than zero"),
        ({"state": "absent"}, None, "names must list at least one snapshot with state=absent (VG vg_jts)"),
        ({"state": "merged", "names": []}, None, "names must list at least one snapshot with state=merged"),
    ],
)
def test_bad_input_fails_naming_the_vg_or_lv(lvm, args, fake, message):
    result, fake = lvm(args, fake=fake)
    assert result["failed"] is True
    assert message in result["msg"]
    assert fake.issued("lvcreate") == [] and fake.issued("lvremove") == []


def test_thin_volumes_are_refused_as_origins(lvm):
    result, _ = lvm({"origins": [{"lv": "thinvol", "size": "1G"}]}, fake=FakeLvm(lvs="lvs_vg_jts_plain.json"))
    assert result["msg"].startswith("LV vg_jts/thinvol cannot be a snapshot origin (lv_attr Vwi-a-tz--")


def test_vg_without_extent_size(lvm):
    vgs = json.loads(fixture("vgs_vg_jts.json"))
    vgs["report"][0]["vg"][0]["vg_extent_size"] = ""
    result, _ = lvm({"origins": SET}, fake=FakeLvm(vgs=(0, json.dumps(vgs), "")))
    assert result["msg"] == "VG vg_jts: LVM reported no extent size"


# -- state=pruned -------------------------------------------------------------------------------


def removed_names(result):
    return sorted(item["name"] for item in result["removed"])


def test_prune_by_count_keeps_the_newest_by_lv_time(lvm):
    result, fake = lvm({"state": "pruned", "keep": 1})
    assert removed_names(result) == [
        # clickhouse: the name says 23 Nov, LVM's lv_time says 10 Nov: the real creation time wins
        "jts_snap_clickhouse_20261123T000000Z",
        "jts_snap_mongodb_20261122T013000Z",
        "jts_snap_postgres_20261120T013000Z",
        "jts_snap_postgres_20261121T013000Z",
    ]
    assert sorted(cmd[-1] for cmd in fake.issued("lvremove"))[0] == "vg_jts/jts_snap_clickhouse_20261123T000000Z"
    kept = sorted(item["name"] for item in result["kept"])
    assert kept == ["jts_snap_clickhouse_20261122T013000Z", "jts_snap_postgres_20261122T013000Z"]
    assert result["foreign_skipped"] == 2
    assert result["changed"] is True


def test_prune_by_age_removes_only_what_is_older(lvm):
    result, _fake = lvm({"state": "pruned", "max_age": "2d"})
    # now is 23 Nov 02:30; 2 days ago is 21 Nov 02:30: 21 Nov 01:30 is older, 22 Nov is not
    assert removed_names(result) == [
        "jts_snap_clickhouse_20261123T000000Z",
        "jts_snap_mongodb_20261122T013000Z",
        "jts_snap_postgres_20261120T013000Z",
        "jts_snap_postgres_20261121T013000Z",
    ]
    reasons = {item["name"]: item["reason"] for item in result["removed"]}
    assert reasons["jts_snap_postgres_20261120T013000Z"] == "older than 172800s (created 2026-11-20T01:30:00Z)"
    assert reasons["jts_snap_mongodb_20261122T013000Z"].startswith("invalid")


def test_prune_by_age_and_count_together(lvm):
    result, _ = lvm({"state": "pruned", "max_age": "3d", "keep": 2})
    assert removed_names(result) == [
        "jts_snap_clickhouse_20261123T000000Z",
        "jts_snap_mongodb_20261122T013000Z",
        "jts_snap_postgres_20261120T013000Z",
    ]
    reasons = {item["name"]: item["reason"] for item in result["removed"]}
    assert reasons["jts_snap_postgres_20261120T013000Z"] == "beyond the newest 2 of postgres"


def test_prune_never_touches_someone_elses_snapshot(lvm):
    result, fake = lvm({"state": "pruned", "keep": 0})
    targets = [cmd[-1] for cmd in fake.issued("lvremove")]
    assert "vg_jts/manual_postgres_before_upgrade" not in targets
    assert "vg_jts/jts_snap_postgres_manual" not in targets
    assert len(targets) == 6 and result["kept"] == []


def test_prune_with_another_prefix_leaves_ours_alone(lvm):
    result, fake = lvm({"state": "pruned", "keep": 0, "prefix": "jts_backup_"})
    assert fake.issued("lvremove") == [] and result["changed"] is False
    assert result["foreign_skipped"] == 8


def test_prune_scoped_to_origins(lvm):
    result, fake = lvm({"state": "pruned", "keep": 0, "origins": [{"lv": "postgres"}]})
    assert [cmd[-1].split("/")[1] for cmd in fake.issued("lvremove")] == [
        "jts_snap_postgres_20261122T013000Z",
        "jts_snap_postgres_20261121T013000Z",
        "jts_snap_postgres_20261120T013000Z",
    ]
    assert result["foreign_skipped"] == 2


def test_invalid_snapshots_are_removed_and_reported_even_without_a_limit(lvm, monkeypatch):
    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, text: warnings.append(text))
    result, _fake = lvm({"state": "pruned"})
    assert removed_names(result) == ["jts_snap_mongodb_20261122T013000Z"]
    assert result["findings"] == [
        {
            "severity": "critical",
            "vg": "vg_jts",
            "lv": "jts_snap_mongodb_20261122T013000Z",
            "origin": "mongodb",
            "message": "snapshot vg_jts/jts_snap_mongodb_20261122T013000Z of mongodb filled up and became invalid; it is removed",
        }
    ]
    assert warnings == [result["findings"][0]["message"]]


def test_prune_check_mode_reports_and_removes_nothing(lvm):
    result, fake = lvm({"state": "pruned", "keep": 1}, check_mode=True, diff=True)
    assert result["changed"] is True and len(result["removed"]) == 4
    assert result["msg"] == "would remove 4 snapshot(s) in VG vg_jts"
    assert fake.issued("lvremove") == []
    assert result["diff"]["before"].count("\n") == 4


def test_prune_with_nothing_to_do_is_not_a_change(lvm):
    result, _fake = lvm({"state": "pruned", "keep": 5}, fake=FakeLvm(lvs="lvs_vg_jts_plain.json"))
    assert result["changed"] is False and result["removed"] == [] and result["findings"] == []


def test_prune_failure_names_the_lv_and_goes_on(lvm):
    fake = FakeLvm(
        fail={
            ("lvremove", "vg_jts/jts_snap_postgres_20261120T013000Z"): (
                5,
                "",
                "  Logical volume vg_jts/jts_snap_postgres_20261120T013000Z in use.\n",
            )
        }
    )
    result, fake = lvm({"state": "pruned", "keep": 1}, fake=fake)
    assert result["failed"] is True and result["changed"] is True
    assert result["msg"].startswith("could not remove vg_jts/jts_snap_postgres_20261120T013000Z (rc 5)")
    assert len(fake.issued("lvremove")) == 4 and len(result["removed"]) == 3


def _with_rows(extra):
    data = json.loads(fixture("lvs_vg_jts.json"))
    data["report"][0]["lv"].extend(extra)
    return (0, json.dumps(data), "")


def test_merging_and_unreadable_time_snapshots_are_kept(lvm):
    rows = [
        {"lv_name": "jts_snap_redis_20261101T013000Z", "vg_name": "vg_jts", "lv_attr": "Swi-a-s---", "lv_size": "1073741824",
         "origin": "redis", "origin_size": "53687091200", "data_percent": "5.00", "lv_time": "2026-11-01 01:30:00 +0000", "lv_snapshot_invalid": ""},
        {"lv_name": "jts_snap_kafka_20261101T013000Z", "vg_name": "vg_jts", "lv_attr": "swi-a-s---", "lv_size": "1073741824",
         "origin": "kafka", "origin_size": "644245094400", "data_percent": "5.00", "lv_time": "Sun Nov  1 01:30:00 2026", "lv_snapshot_invalid": ""},
    ]  # fmt: skip
    result, fake = lvm({"state": "pruned", "max_age": "1d"}, fake=FakeLvm(lvs=_with_rows(rows)))
    kept = {item["name"]: item["reason"] for item in result["kept"]}
    assert kept["jts_snap_redis_20261101T013000Z"] == "merging into its origin: left alone"
    assert kept["jts_snap_kafka_20261101T013000Z"].startswith("creation time 'Sun Nov  1 01:30:00 2026' unreadable")
    assert any(f["severity"] == "warning" and f["lv"] == "jts_snap_kafka_20261101T013000Z" for f in result["findings"])
    assert not any("redis" in cmd[-1] or "kafka" in cmd[-1] for cmd in fake.issued("lvremove"))


# -- state=absent -------------------------------------------------------------------------------


def test_absent_removes_named_snapshots_and_reports_missing_ones(lvm):
    names = ["jts_snap_postgres_20261120T013000Z", "jts_snap_postgres_20991231T000000Z"]
    result, fake = lvm({"state": "absent", "names": names})
    assert fake.issued("lvremove") == [["/usr/bin/lvremove", "--force", "vg_jts/jts_snap_postgres_20261120T013000Z"]]
    assert result["not_found"] == ["jts_snap_postgres_20991231T000000Z"] and result["changed"] is True


def test_absent_of_missing_names_is_no_change(lvm):
    result, fake = lvm({"state": "absent", "names": ["jts_snap_postgres_20991231T000000Z"]})
    assert result["changed"] is False and fake.issued("lvremove") == []


def test_absent_check_mode(lvm):
    result, fake = lvm({"state": "absent", "names": ["jts_snap_postgres_20261120T013000Z"]}, check_mode=True)
    assert result["changed"] is True and fake.issued("lvremove") == []
    assert result["removed"][0]["name"] == "jts_snap_postgres_20261120T013000Z"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("postgres", "LV vg_jts/postgres is not a snapshot: refused"),
        (
            "manual_postgres_before_upgrade",
            "is not a snapshot of this collection (prefix 'jts_snap_', origin postgres): refused",
        ),
        ("jts_snap_postgres_manual", "LV vg_jts/jts_snap_postgres_manual is not a snapshot of this collection"),
    ],
)
def test_absent_refuses_what_is_not_ours(lvm, name, message):
    result, fake = lvm({"state": "absent", "names": [name]})
    assert result["failed"] is True and message in result["msg"] and result["lv"] == name
    assert fake.issued("lvremove") == []


def test_absent_failure_is_reported(lvm):
    fake = FakeLvm(fail={("lvremove", "vg_jts/jts_snap_postgres_20261120T013000Z"): (5, "", "  in use\n")})
    result, _ = lvm({"state": "absent", "names": ["jts_snap_postgres_20261120T013000Z"]}, fake=fake)
    assert result["failed"] is True and "vg_jts/jts_snap_postgres_20261120T013000Z (rc 5): in use" in result["msg"]


# -- state=merged -------------------------------------------------------------------------------


def test_merge_of_a_mounted_origin_completes_at_next_activation(lvm):
    out = (
        "  Delaying merge since origin is open.\n"
        "  Merging of snapshot vg_jts/jts_snap_postgres_20261122T013000Z will occur on next activation of vg_jts/postgres.\n"
    )
    result, fake = lvm(
        {"state": "merged", "names": ["jts_snap_postgres_20261122T013000Z"]}, fake=FakeLvm(merge_out=out)
    )
    assert fake.issued("lvconvert") == [["/usr/bin/lvconvert", "--merge", "vg_jts/jts_snap_postgres_20261122T013000Z"]]
    assert result["changed"] is True and result["merge_deferred"] is True
    assert "completes only at the next activation of vg_jts/postgres" in result["msg"]


def test_merge_of_a_closed_origin_is_done(lvm):
    rows = json.loads(fixture("lvs_vg_jts_plain.json"))["report"][0]["lv"]
    rows = [dict(r, lv_attr="owi-a-s---") if r["lv_name"] == "kafka" else r for r in rows]
    rows.append(
        {"lv_name": "jts_snap_kafka_20261122T013000Z", "vg_name": "vg_jts", "lv_attr": "swi-a-s---", "lv_size": "1073741824",
         "origin": "kafka", "origin_size": "644245094400", "data_percent": "5.00", "lv_time": "2026-11-22 01:30:00 +0000", "lv_snapshot_invalid": ""}
    )  # fmt: skip
    fake = FakeLvm(lvs=report("lv", rows), merge_out="  vg_jts/kafka: Merged: 100.00%\n")
    result, _ = lvm({"state": "merged", "names": ["jts_snap_kafka_20261122T013000Z"]}, fake=fake)
    assert result["merge_deferred"] is False
    assert (
        result["msg"] == "merged vg_jts/jts_snap_kafka_20261122T013000Z into vg_jts/kafka: done, the snapshot is gone"
    )
    check, fake = lvm(
        {"state": "merged", "names": ["jts_snap_kafka_20261122T013000Z"]}, fake=FakeLvm(lvs=fake.lvs), check_mode=True
    )
    assert (
        check["msg"]
        == "would merge vg_jts/jts_snap_kafka_20261122T013000Z into vg_jts/kafka now (the origin is not open)"
    )
    assert fake.issued("lvconvert") == []


def test_merge_check_mode_of_an_open_origin(lvm):
    result, fake = lvm({"state": "merged", "names": ["jts_snap_postgres_20261122T013000Z"]}, check_mode=True)
    assert fake.issued("lvconvert") == [] and result["changed"] is True and result["merge_deferred"] is True
    assert result["msg"].startswith("would merge vg_jts/jts_snap_postgres_20261122T013000Z into vg_jts/postgres")


def test_merge_already_in_progress_is_no_change(lvm):
    rows = [
        {"lv_name": "jts_snap_redis_20261101T013000Z", "vg_name": "vg_jts", "lv_attr": "Swi-a-s---", "lv_size": "1073741824",
         "origin": "redis", "origin_size": "53687091200", "data_percent": "5.00", "lv_time": "2026-11-01 01:30:00 +0000", "lv_snapshot_invalid": ""},
    ]  # fmt: skip
    result, fake = lvm(
        {"state": "merged", "names": ["jts_snap_redis_20261101T013000Z"]}, fake=FakeLvm(lvs=_with_rows(rows))
    )
    assert result["changed"] is False and result["merge_deferred"] is True and fake.issued("lvconvert") == []
    assert "already merging" in result["msg"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["jts_snap_postgres_20991231T000000Z"], "snapshot jts_snap_postgres_20991231T000000Z not found in VG vg_jts"),
        (
            ["jts_snap_mongodb_20261122T013000Z"],
            "snapshot vg_jts/jts_snap_mongodb_20261122T013000Z is invalid (it filled up): it cannot be merged",
        ),
        (
            ["jts_snap_postgres_20261121T013000Z", "jts_snap_postgres_20261122T013000Z"],
            "snapshots jts_snap_postgres_20261121T013000Z and jts_snap_postgres_20261122T013000Z both belong to vg_jts/postgres",
        ),
    ],
)
def test_merge_refusals(lvm, names, message):
    result, fake = lvm({"state": "merged", "names": names})
    assert result["failed"] is True and message in result["msg"] and fake.issued("lvconvert") == []


def test_merge_failure_names_the_snapshot(lvm):
    fake = FakeLvm(fail={("lvconvert", "vg_jts/jts_snap_postgres_20261122T013000Z"): (5, "", "  Unable to merge.\n")})
    result, _ = lvm({"state": "merged", "names": ["jts_snap_postgres_20261122T013000Z"]}, fake=fake)
    assert (
        result["msg"]
        == "lvconvert --merge of vg_jts/jts_snap_postgres_20261122T013000Z failed (rc 5): Unable to merge."
    )
    assert result["lv"] == "jts_snap_postgres_20261122T013000Z"
