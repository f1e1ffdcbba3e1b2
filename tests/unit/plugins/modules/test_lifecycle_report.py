"""lifecycle_report and jts-lifecycle-report (the OnFailure= handler) on temp dirs, logger mocked."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils import _sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report_cli import main as cli
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report_io import load_state, save_state
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath
from ansible_collections.jts.tiered_storage.plugins.modules import lifecycle_report

SECRET = "https://alice:s3cret-token@hooks.example.invalid/jts"  # noqa: S105 (a test URL)


def args(tmp_path, steps, **extra):
    base = {
        "run_id": "run-1",
        "started": 1000.0,
        "steps": steps,
        "state_dir": str(tmp_path / "state"),
        "textfile": str(tmp_path / "prom" / "jts_lifecycle.prom"),
        "invocation_id": "inv-1",
    }
    base.update(extra)
    return base


GOOD = [
    {"name": "backup", "status": "success", "started": 1000.0, "ended": 1010.0, "figures": {"files_archived": 2}},
    {"name": "migrate", "status": "success", "started": 1010.0, "ended": 1020.0},
]
BAD = [
    {"name": "backup", "status": "success", "started": 2000.0, "ended": 2010.0},
    {
        "name": "archive",
        "status": "skipped",
        "started": 2010.0,
        "ended": 2011.0,
        "reason": "/mnt/synology is not mounted",
    },
]


@pytest.fixture
def dirs(tmp_path):
    (tmp_path / "prom").mkdir()
    return tmp_path


@pytest.fixture
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, text: seen.append(text))
    return seen


@pytest.fixture
def webhook(monkeypatch):
    calls = []

    def send(target, payload, timeout, opener=None):
        calls.append((target.url, payload))
        return 200

    monkeypatch.setattr(_sinks, "send_webhook", send)
    return calls


def logger_ok(cmd, **kw):
    assert cmd[:2] == ["/usr/bin/logger", "-t"]
    return 0, "", ""


def test_a_run_writes_state_textfile_and_journal(dirs, run_module, webhook):
    result = run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    assert result["success"] is True and result["changed"] is True
    assert result["sinks"]["state"]["written"] and result["sinks"]["textfile"]["written"]
    assert result["sinks"]["journal"]["sent"] == 3
    assert [c[4] for c in result.commands] == ["user.info"] * 3
    assert oct(os.stat(dirs / "state").st_mode & 0o777) == "0o700"
    text = (dirs / "prom" / "jts_lifecycle.prom").read_text()
    assert "jts_lifecycle_run_success 1\n" in text
    assert 'jts_lifecycle_step_files{step="backup",action="archived"} 2\n' in text
    assert webhook == []  # webhook_on failure, and no URL anyway
    state, warning = load_state(str(dirs / "state"))
    assert warning is None and state["run"]["invocation_id"] == "inv-1"


def test_a_failed_run_keeps_last_success_and_calls_the_webhook_without_showing_it(dirs, run_module, webhook):
    run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    result = run_module(lifecycle_report, args(dirs, BAD, run_id="run-2", webhook_url=SECRET), commands=logger_ok)
    assert result["success"] is False
    assert result["message"] == "archive skipped: /mnt/synology is not mounted"
    assert result["state"]["steps"]["migrate"]["last_success"] == 1020.0  # not run tonight: kept
    assert result["state"]["run"]["last_success"] >= 1020.0
    [(url, payload)] = webhook
    assert url == "https://hooks.example.invalid/jts" and payload["status"] == "failed"
    assert "s3cret" not in json.dumps(result)
    text = (dirs / "prom" / "jts_lifecycle.prom").read_text()
    assert 'jts_lifecycle_step_skipped{step="archive"} 1' in text and "jts_lifecycle_run_success 0" in text


def test_check_mode_writes_and_sends_nothing_and_shows_the_diff(dirs, run_module, webhook):
    result = run_module(lifecycle_report, args(dirs, BAD, webhook_url=SECRET), check_mode=True, diff=True)
    assert result.commands == [] and webhook == []
    assert not (dirs / "state").exists() and not (dirs / "prom" / "jts_lifecycle.prom").exists()
    assert result["diff"]["before"] == "" and "jts_lifecycle_run_success 0" in result["diff"]["after"]
    assert result["sinks"]["webhook"]["skipped"] == "check mode"
    assert result["changed"] is True


def test_a_state_dir_others_may_write_is_refused(dirs, run_module):
    (dirs / "state").mkdir(mode=0o777)
    os.chmod(dirs / "state", 0o777)  # noqa: S103 (the unsafe dir under test)
    result = run_module(lifecycle_report, args(dirs, GOOD))
    assert result["failed"] and "writable by it alone" in result["msg"]


def test_a_symlink_in_place_of_the_state_is_not_followed(dirs, run_module, warnings):
    save_state(str(dirs / "state"), {"version": 1, "run": {}, "steps": {}})
    victim = dirs / "victim"
    victim.write_text("keep me")
    os.unlink(dirs / "state" / "last-run.json")
    os.symlink(victim, dirs / "state" / "last-run.json")
    result = run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    assert victim.read_text() == "keep me"
    assert not os.path.islink(dirs / "state" / "last-run.json")
    assert result["success"] is True
    assert any("was not readable" in w for w in warnings)


def test_a_symlinked_state_dir_is_refused(dirs):
    (dirs / "real").mkdir(mode=0o700)
    os.symlink(dirs / "real", dirs / "state")
    with pytest.raises(UnsafePath):
        save_state(str(dirs / "state"), {"version": 1, "run": {}, "steps": {}})


def test_a_corrupt_state_starts_afresh_with_a_warning(dirs, run_module, warnings):
    (dirs / "state").mkdir(mode=0o700)
    (dirs / "state" / "last-run.json").write_text("{not json")
    result = run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    assert result["success"] is True
    assert any("started afresh" in w for w in warnings)


def test_a_bad_step_is_refused(dirs, run_module):
    result = run_module(lifecycle_report, args(dirs, [dict(GOOD[0], figures={"moved": 1})]))
    assert result["failed"] and "files_<action>" in result["msg"]


def test_a_logger_failure_is_a_warning_not_a_failure(dirs, run_module, warnings):
    result = run_module(lifecycle_report, args(dirs, GOOD), commands=lambda cmd, **kw: (1, "", "no socket"))
    assert result["success"] is True and not result.get("failed")
    assert "journal: logger failed (rc 1): no socket" in warnings


# ----------------------------------------------------------------------------------------------
# jts-lifecycle-report
# ----------------------------------------------------------------------------------------------


class Opener:
    def __init__(self):
        self.requests = []

    def __call__(self, request, timeout):
        self.requests.append(json.loads(request.data))
        opener = self

        class Response:
            status = 200

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        del opener
        return Response()


@pytest.fixture
def config(dirs, monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)  # no logger: a journal error, nothing else
    path = dirs / "lifecycle-report.json"
    path.write_text(
        json.dumps(
            {
                "state_dir": str(dirs / "state"),
                "textfile": str(dirs / "prom" / "jts_lifecycle.prom"),
                "journal": False,
                "webhook_url": SECRET,
                "webhook_on": "failure",
                "host": "db1",
            }
        )
    )
    return str(path)


MONITOR = {
    "MONITOR_UNIT": "jts-lifecycle.service",
    "MONITOR_SERVICE_RESULT": "signal",
    "MONITOR_EXIT_CODE": "killed",
    "MONITOR_EXIT_STATUS": "KILL",
    "MONITOR_INVOCATION_ID": "inv-dead",
}


def test_the_handler_records_a_run_that_died(dirs, run_module, config, capsys):
    run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    opener = Opener()
    assert cli(["--config", config, "--unit-failed"], environ=MONITOR, opener=opener) == 0
    state, _ = load_state(str(dirs / "state"))
    assert state["run"]["source"] == "on-failure" and state["run"]["success"] is False
    assert (
        state["run"]["message"] == "jts-lifecycle.service failed before the run reported (result signal, killed KILL)"
    )
    assert state["steps"]["backup"]["status"] == "success"  # the last known steps stay
    text = (dirs / "prom" / "jts_lifecycle.prom").read_text()
    assert "jts_lifecycle_run_success 0" in text
    assert [r["status"] for r in opener.requests] == ["failed"] and opener.requests[0]["host"] == "db1"
    assert "s3cret" not in capsys.readouterr().out


def test_the_handler_does_not_report_a_run_twice(dirs, run_module, config, capsys):
    run_module(lifecycle_report, args(dirs, BAD, invocation_id="inv-dead"), commands=logger_ok)
    before = (dirs / "state" / "last-run.json").read_text()
    opener = Opener()
    assert cli(["--config", config, "--unit-failed"], environ=MONITOR, opener=opener) == 0
    assert opener.requests == []
    assert (dirs / "state" / "last-run.json").read_text() == before
    assert "reported itself" in capsys.readouterr().out


def test_the_summary_and_its_exit_status(dirs, run_module, config, capsys):
    assert cli(["--config", config], environ={}) == 3
    assert "no lifecycle run recorded yet" in capsys.readouterr().out
    run_module(lifecycle_report, args(dirs, GOOD), commands=logger_ok)
    assert cli(["--config", config], environ={}) == 0
    out = capsys.readouterr().out
    assert out.startswith("last run: SUCCESS") and "files_archived=2" in out
    run_module(lifecycle_report, args(dirs, BAD), commands=logger_ok)
    assert cli(["--config", config, "--json"], environ={}) == 1
    assert json.loads(capsys.readouterr().out)["run"]["success"] is False


def test_the_handler_with_an_unreadable_config_is_unknown(dirs, capsys):
    assert cli(["--config", str(dirs / "missing.json"), "--unit-failed"], environ=MONITOR) == 3
    assert "missing.json" in capsys.readouterr().err
