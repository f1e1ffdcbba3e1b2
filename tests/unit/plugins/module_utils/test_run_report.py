"""The run report's pure part: merging a run into the state, the textfile, journal lines, webhook."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    ReportError,
    empty_state,
    has_warnings,
    journal_messages,
    merge_dead_run,
    merge_run,
    normalise_step,
    render_textfile,
    reported_by_playbook,
    webhook_payload,
    webhook_wanted,
)


def step(name, status="success", started=100.0, ended=110.5, message="", figures=None):
    return normalise_step(
        {"name": name, "status": status, "started": started, "ended": ended, "reason": message, "figures": figures}
    )


def samples(text):
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1] for line in text.splitlines() if not line.startswith("#")}


def test_a_good_run_sets_every_last_success():
    state = merge_run(
        empty_state(), [step("backup"), step("migrate", figures={"files_moved": 3})], "r1", "inv1", 99.0, 120.0
    )
    assert state["run"]["success"] is True and state["run"]["last_success"] == 120.0
    assert state["steps"]["backup"]["last_success"] == 110.5
    assert state["steps"]["migrate"]["figures"] == {"files_moved": 3}
    assert state["run"]["message"] == "every step succeeded"


def test_a_failed_or_skipped_step_keeps_its_last_success_and_fails_the_run():
    first = merge_run(empty_state(), [step("backup"), step("archive")], "r1", "", 99.0, 120.0)
    second = merge_run(
        first,
        [
            step("backup", "skipped", 200.0, 201.0, "/data/warm-storage is not mounted"),
            step("archive", "failed", 201.0, 202.0, "rsync 23"),
        ],
        "r2",
        "",
        199.0,
        210.0,
    )
    assert second["steps"]["backup"]["status"] == "skipped"
    assert second["steps"]["backup"]["last_success"] == 110.5  # not refreshed by a skip
    assert second["steps"]["archive"]["last_success"] == 110.5
    assert second["run"]["success"] is False and second["run"]["last_success"] == 120.0
    assert second["run"]["message"] == "backup skipped: /data/warm-storage is not mounted; archive failed: rsync 23"


def test_steps_this_run_did_not_run_keep_their_entry():
    first = merge_run(empty_state(), [step("backup"), step("cleanup")], "r1", "", 99.0, 120.0)
    second = merge_run(first, [step("backup", started=300.0, ended=301.0)], "r2", "", 299.0, 310.0)
    assert second["steps"]["cleanup"] == first["steps"]["cleanup"]
    assert second["run"]["steps"] == ["backup"]


def test_a_failure_outside_the_steps_fails_the_run():
    state = merge_run(empty_state(), [step("backup")], "r1", "", 99.0, 120.0, failure="the play failed")
    assert state["run"]["success"] is False and state["run"]["last_success"] is None
    assert state["run"]["message"] == "the play failed"


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"status": "done"}, "status: 'done' is not one of success, failed, skipped"),
        ({"ended": 50.0}, "ended (50.0) is before started (100.0)"),
        ({"figures": {"moved": 1}}, "'moved' is not files_<action> or bytes_<action>"),
        ({"figures": {"files_moved": -1}}, "is not a finite number of zero or more"),
        ({"figures": {"bytes_moved": "many"}}, "'many' is not a number"),
        ({"name": "back up"}, "a step needs a name"),
        ({"started": None}, "started: None is not a number"),
    ],
)
def test_a_bad_outcome_is_refused_with_the_field(fields, message):
    raw = {"name": "backup", "status": "success", "started": 100.0, "ended": 110.0}
    raw.update(fields)
    with pytest.raises(ReportError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        normalise_step(raw)


def test_the_textfile_has_each_family_once_and_never_as_zero():
    state = merge_run(
        empty_state(),
        [
            step("backup", "failed", message='lvcreate: "vg" full'),
            step("migrate", figures={"files_moved": 2, "bytes_moved": 4096}),
        ],
        "r1",
        "",
        99.0,
        120.25,
    )
    text = render_textfile(state)
    assert text.count("# TYPE jts_lifecycle_step_success gauge") == 1
    got = samples(text)
    assert got["jts_lifecycle_run_success"] == "0"
    assert got["jts_lifecycle_run_timestamp_seconds"] == "120.25"
    assert got["jts_lifecycle_run_duration_seconds"] == "21.25"
    assert got["jts_lifecycle_run_last_success_timestamp_seconds"] == "0"
    assert got['jts_lifecycle_step_success{step="backup"}'] == "0"
    assert got['jts_lifecycle_step_skipped{step="backup"}'] == "0"
    assert got['jts_lifecycle_step_last_success_timestamp_seconds{step="backup"}'] == "0"
    assert got['jts_lifecycle_step_last_success_timestamp_seconds{step="migrate"}'] == "110.5"
    assert got['jts_lifecycle_step_files{step="migrate",action="moved"}'] == "2"
    assert got['jts_lifecycle_step_bytes{step="migrate",action="moved"}'] == "4096"
    assert got['jts_lifecycle_step_duration_seconds{step="migrate"}'] == "10.5"
    assert text.endswith("\n")


def test_a_dead_run_keeps_the_steps_and_says_why():
    first = merge_run(empty_state(), [step("backup")], "r1", "inv1", 99.0, 120.0)
    dead = merge_dead_run(first, "inv2", 500.0, "jts-lifecycle.service failed (result signal, killed KILL)")
    assert dead["steps"] == first["steps"]
    assert dead["run"]["success"] is False and dead["run"]["last_success"] == 120.0
    assert dead["run"]["source"] == "on-failure"
    got = samples(render_textfile(dead))
    assert got["jts_lifecycle_run_success"] == "0" and "jts_lifecycle_run_duration_seconds" not in got
    assert journal_messages(dead) == [
        ("err", "lifecycle run FAILED: jts-lifecycle.service failed (result signal, killed KILL)")
    ]


def test_only_the_playbook_report_of_the_same_invocation_counts():
    reported = merge_run(empty_state(), [step("backup", "failed")], "r1", "inv1", 99.0, 120.0)
    assert reported_by_playbook(reported, "inv1")
    assert not reported_by_playbook(reported, "inv2")
    assert not reported_by_playbook(reported, "")
    assert not reported_by_playbook(merge_dead_run(reported, "inv1", 130.0, "x"), "inv1")
    assert not reported_by_playbook(empty_state(), "inv1")


def test_journal_lines_per_step_with_priorities():
    state = merge_run(
        empty_state(),
        [
            step("backup", figures={"files_archived": 2}),
            step("archive", "skipped", message="/mnt/synology is not mounted"),
        ],
        "r1",
        "",
        99.0,
        120.0,
    )
    assert journal_messages(state) == [
        ("info", "step backup SUCCESS in 10.5 s: files_archived=2"),
        ("err", "step archive SKIPPED in 10.5 s: /mnt/synology is not mounted"),
        ("err", "lifecycle run FAILED: archive skipped: /mnt/synology is not mounted"),
    ]


@pytest.mark.parametrize(
    "webhook_on, success, files_failed, wanted",
    [
        ("never", False, 0, False),
        ("failure", False, 0, True),
        ("failure", True, 3, False),
        ("warning", True, 3, True),
        ("warning", True, 0, False),
        ("always", True, 0, True),
    ],
)
def test_when_the_webhook_is_called(webhook_on, success, files_failed, wanted):
    status = "success" if success else "failed"
    state = merge_run(
        empty_state(), [step("migrate", status, figures={"files_failed": files_failed})], "r", "", 99.0, 120.0
    )
    assert has_warnings(state) is (files_failed > 0)
    assert webhook_wanted(state, webhook_on) is wanted


def test_the_webhook_payload_names_the_host_run_and_steps():
    state = merge_run(empty_state(), [step("backup", "failed", message="no space")], "r9", "inv9", 99.0, 120.0)
    payload = webhook_payload(state, "db1")
    assert payload["source"] == "jts-lifecycle" and payload["host"] == "db1" and payload["status"] == "failed"
    assert payload["run"]["id"] == "r9" and payload["run"]["invocation_id"] == "inv9"
    assert payload["steps"][0]["name"] == "backup" and payload["steps"][0]["message"] == "no space"


CH_GAUGES = [
    {"metric": "clickhouse_disk_bytes", "labels": {"server": "ch1", "disk": "default"}, "value": 734003200},
    {"metric": "clickhouse_disk_parts", "labels": {"disk": "default", "server": "ch1"}, "value": 40},
    {"metric": "clickhouse_hot_oldest_part_timestamp_seconds", "labels": {"server": "ch1"}, "value": 1795737600},
]


def gauged(gauges, status="success"):
    return normalise_step(
        {"name": "clickhouse_tiering", "status": status, "started": 1.0, "ended": 2.0, "gauges": gauges}
    )


def test_gauges_are_exported_with_their_labels_and_replaced_by_the_next_run():
    first = merge_run(empty_state(), [gauged(CH_GAUGES)], "r1", "", 0.5, 3.0)
    text = render_textfile(first)
    found = samples(text)
    assert found['jts_lifecycle_clickhouse_disk_bytes{server="ch1",disk="default"}'] == "734003200"
    assert found['jts_lifecycle_clickhouse_disk_parts{server="ch1",disk="default"}'] == "40"
    assert found['jts_lifecycle_clickhouse_hot_oldest_part_timestamp_seconds{server="ch1"}'] == "1795737600"
    assert text.count("# TYPE jts_lifecycle_clickhouse_disk_bytes gauge") == 1
    # a run that measured nothing (skipped: its tier missing) exports none, not last night's figures
    second = merge_run(first, [gauged([], "skipped")], "r2", "", 3.5, 5.0)
    assert second["steps"]["clickhouse_tiering"]["gauges"] == []
    assert "clickhouse_disk_bytes" not in render_textfile(second)


def test_a_gauge_from_a_later_version_is_kept_in_the_state_but_not_exported():
    state = merge_run(empty_state(), [gauged(CH_GAUGES[:1])], "r1", "", 0.5, 3.0)
    state["steps"]["clickhouse_tiering"]["gauges"].append({"metric": "future_metric", "labels": {}, "value": 1})
    assert "future_metric" not in render_textfile(state)


@pytest.mark.parametrize(
    "gauges, message",
    [
        (["x"], r"gauges\[0\]: 'x' is not a dict"),
        ([{"metric": "disk_bytes", "labels": {}, "value": 1}], r"gauges\[0\]\.metric: 'disk_bytes' is not one of"),
        (
            [{"metric": "clickhouse_disk_bytes", "labels": {"server": "a"}, "value": 1}],
            "exactly the labels server, disk",
        ),
        (
            [{"metric": "clickhouse_disk_bytes", "labels": {"server": "a", "disk": "d", "x": "y"}, "value": 1}],
            "exactly the labels",
        ),
        ([{"metric": "clickhouse_hot_oldest_part_timestamp_seconds", "labels": {"server": ""}, "value": 1}], "empty"),
        ([{"metric": "clickhouse_hot_oldest_part_timestamp_seconds", "labels": {"server": "a"}, "value": -1}], "zero"),
        (
            [{"metric": "clickhouse_hot_oldest_part_timestamp_seconds", "labels": {"server": "a"}, "value": "x"}],
            "number",
        ),
        (
            [*CH_GAUGES[2:], dict(CH_GAUGES[2], value=1)],
            r"gauges\[1\]: a second clickhouse_hot_oldest_part_timestamp_seconds .* of another value",
        ),
        ([dict(CH_GAUGES[2], value=True)], r"\.value: True is not a number"),
        ([dict(CH_GAUGES[2], value="inf")], r"\.value: inf is not a finite number"),
    ],
)
def test_a_bad_gauge_is_refused_with_its_place(gauges, message):
    with pytest.raises(ReportError, match=message):
        gauged(gauges)


def test_the_same_gauge_twice_is_one_sample():
    """Two lifecycle_clickhouse_tiering entries for one server report its disks twice."""
    assert gauged(CH_GAUGES + CH_GAUGES)["gauges"] == gauged(CH_GAUGES)["gauges"]


@pytest.mark.parametrize(
    "bad",
    [
        {"metric": "clickhouse_disk_bytes", "labels": {"server": "ch1"}, "value": 1},
        "x",
        {"metric": "clickhouse_disk_parts", "labels": {"server": "ch1", "disk": "d"}, "value": "many"},
    ],
)
def test_a_stored_gauge_that_does_not_check_out_is_left_out_not_fatal(bad):
    """A state edited by hand (or older code) must not fail every later report of other steps."""
    state = merge_run(empty_state(), [gauged(CH_GAUGES[:1])], "r1", "", 0.5, 3.0)
    state["steps"]["clickhouse_tiering"]["gauges"].append(bad)
    later = merge_run(state, [step("backup")], "r2", "", 4.0, 120.0)
    text = render_textfile(later)
    assert 'jts_lifecycle_clickhouse_disk_bytes{server="ch1",disk="default"} 734003200' in text
    assert "many" not in text


def test_a_stored_gauge_twice_is_exported_once_the_first_value_kept():
    """node_exporter refuses a whole textfile with one sample twice: a state edited by hand must not do that."""
    state = merge_run(empty_state(), [gauged(CH_GAUGES[:1])], "r1", "", 0.5, 3.0)
    state["steps"]["clickhouse_tiering"]["gauges"].append(dict(CH_GAUGES[0], value=1))
    text = render_textfile(merge_run(state, [step("backup")], "r2", "", 4.0, 120.0))
    lines = [line for line in text.splitlines() if line.startswith("jts_lifecycle_clickhouse_disk_bytes{")]
    assert lines == ['jts_lifecycle_clickhouse_disk_bytes{server="ch1",disk="default"} 734003200']
