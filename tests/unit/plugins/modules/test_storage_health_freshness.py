"""storage_health's ``freshness`` option: the module in-process (no command runs) on real
directories in tmp_path, its textfile, and its documentation against its argument spec."""

from __future__ import annotations

import datetime
import json
import os
import socket
import time

import yaml

from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import DEFAULTS
from ansible_collections.jts.tiered_storage.plugins.modules import storage_health

H = 3600


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def backup(directory, lv, age):
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.fromtimestamp(time.time() - age, datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    name = "%s_%s.tar.zst" % (lv, stamp)
    (directory / name).write_bytes(b"x")
    (directory / (name + ".sha256")).write_text("0" * 64 + "  " + name + "\n")


def args(tmp_path, **freshness):
    return {
        "tiers": [{"name": "warm", "paths": [str(tmp_path)], "btrfs_stats": False, "warning": 100, "critical": 100}],
        "freshness": freshness,
    }


def test_module_checks_freshness_and_writes_the_ages(run_module, tmp_path):
    backup(tmp_path / "backups" / "postgres", "postgres", 2 * H)
    backup(tmp_path / "backups" / "mongodb", "mongodb", 30 * H)
    state = tmp_path / "state"
    state.mkdir()
    (state / "last-run.json").write_text(json.dumps({"version": 1, "run": {"last_success": time.time() - 60 * H}}))
    prom = tmp_path / "jts_storage.prom"
    params = args(
        tmp_path,
        backups={"directory": str(tmp_path / "backups"), "volumes": ["postgres", "mongodb", "clickhouse"]},
        last_run={"state_dir": str(state)},
    )
    result = run_module(storage_health, dict(params, textfile=str(prom)))
    assert result.commands == [] and result.get("failed") is not True
    statuses = {(c["kind"], c["name"]): c["status"] for c in result["freshness"]["checks"]}
    assert statuses == {
        ("backup", "postgres"): "ok",
        ("backup", "mongodb"): "warning",
        ("backup", "clickhouse"): "critical",  # never backed up: its directory does not exist
        ("last_run", "nightly"): "critical",
    }
    assert result["status"] == "critical" and result["exit_code"] == 2
    assert result["alert_counts"] == {"critical": 2, "warning": 1, "unknown": 0}
    assert "'backup postgres age'=72" in result["perfdata"] and ";93600;180000;0;" in result["perfdata"]
    assert "[freshness] CRITICAL" in result["report"]
    text = prom.read_text()
    assert 'jts_storage_backup_age_seconds{lv="mongodb"} 108' in text
    assert 'jts_storage_freshness_status{kind="backup",name="clickhouse"} 2' in text
    assert "jts_storage_lifecycle_last_success_age_seconds 216" in text


def test_module_nas_away_makes_the_nas_checks_unknown(run_module, tmp_path):
    params = args(
        tmp_path,
        nas_server="127.0.0.1",
        nas_port=closed_port(),
        nas_backups={"directory": str(tmp_path / "nas" / "database"), "volumes": ["postgres"]},
        nas_snapshots={"archives": {"configs": str(tmp_path / "nas" / "configs")}},
    )
    result = run_module(storage_health, params)
    assert result["status"] == "unknown" and result["exit_code"] == 3
    assert result["freshness"]["nas"]["up"] is False
    assert [c["status"] for c in result["freshness"]["checks"]] == ["unknown", "unknown"]
    assert all("the NAS does not answer" in a["message"] for a in result["alerts"])


def test_module_refuses_bad_freshness_by_name(run_module, tmp_path):
    result = run_module(
        storage_health, args(tmp_path, backups={"directory": "/d", "volumes": ["pg"], "warning": "later"})
    )
    assert result["failed"] is True
    assert result["msg"] == "freshness.backups.warning: 'later' is not an age (examples: 7d, 12h, 30m, 2w)"


def test_module_without_freshness_has_an_empty_block(run_module, tmp_path):
    result = run_module(storage_health, args(tmp_path))
    assert result["freshness"] == {"status": "ok", "checks": [], "nas": None}
    assert result["status"] == "ok"


def _compare(doc_options, spec, where):
    assert sorted(doc_options) == sorted(spec), where
    for name, entry in spec.items():
        doc = doc_options[name]
        assert doc.get("type") == entry.get("type"), (where, name)
        assert doc.get("default") == entry.get("default"), (where, name)
        assert doc.get("choices") == entry.get("choices"), (where, name)
        assert doc.get("elements") == entry.get("elements"), (where, name)
        if entry.get("options"):
            _compare(doc["suboptions"], entry["options"], "%s.%s" % (where, name))


def test_documentation_matches_the_argument_spec():
    doc = yaml.safe_load(storage_health.DOCUMENTATION)["options"]
    _compare(doc["freshness"]["suboptions"], storage_health.ARGUMENT_SPEC["freshness"]["options"], "freshness")
    for block, defaults in DEFAULTS.items():
        for key, value in defaults.items():
            assert doc["freshness"]["suboptions"][block]["suboptions"][key]["default"] == value


def test_no_state_file_is_written_or_followed(run_module, tmp_path):
    # a symlink planted as the state, pointing at a file that would say all is well
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"run": {"last_success": time.time()}}))
    (tmp_path / "state").mkdir()
    os.symlink(good, tmp_path / "state" / "last-run.json")
    result = run_module(storage_health, args(tmp_path, last_run={"state_dir": str(tmp_path / "state")}))
    check = result["freshness"]["checks"][0]
    assert check["status"] == "unknown" and "not followed" in check["error"]
    assert os.path.islink(tmp_path / "state" / "last-run.json")


def _open_fifo(path):
    with open(path) as handle:  # blocks: nobody ever opens the FIFO for writing
        return handle.read()


def test_cli_stalled_nas_is_unknown_within_the_timeout(tmp_path):
    """jts-storage-check with a NAS scan that really blocks (a FIFO, in the child): UNKNOWN in time."""
    import io

    from ansible_collections.jts.tiered_storage.plugins.module_utils import _health_cli
    from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import call_with_timeout

    fifo = tmp_path / "stall"
    os.mkfifo(fifo)
    backup(tmp_path / "backups" / "postgres", "postgres", 2 * H)
    nas = str(tmp_path / "nas")

    def call(func, args, timeout):
        if args[0].startswith(nas):
            return call_with_timeout(_open_fifo, (str(fifo),), timeout)  # a real blocked call in a child
        return call_with_timeout(func, args, timeout)

    settings = args(
        tmp_path,
        backups={"directory": str(tmp_path / "backups"), "volumes": ["postgres"]},
        nas_backups={"directory": nas + "/database", "volumes": ["postgres"]},
        nas_snapshots={"archives": {"configs": nas + "/configs"}},
    )
    config = tmp_path / "health.json"
    config.write_text(json.dumps(dict(settings, timeout=3, probe_timeout=1)))
    out = io.StringIO()
    started = time.monotonic()
    code = _health_cli.main(["--config", str(config), "--all"], stdout=out, call=call)
    elapsed = time.monotonic() - started
    assert code == 3, out.getvalue()
    first = out.getvalue().splitlines()[0]
    assert first.startswith(
        "STORAGE UNKNOWN - 2 alert(s): freshness %s/database/postgres: backup of postgres on the NAS" % nas
    )
    assert "did not answer within 1.0s (stalled mount?)" in first
    assert "'backup postgres age'=72" in first
    assert 0.9 < elapsed < 3 + 1


def cli(tmp_path, settings, *argv):
    import io

    from ansible_collections.jts.tiered_storage.plugins.module_utils import _health_cli

    config = tmp_path / "health.json"
    config.write_text(json.dumps(settings))
    out = io.StringIO()
    code = _health_cli.main(["--config", str(config), *argv], stdout=out)
    return code, out.getvalue()


def test_cli_scopes_tiers_by_default_freshness_alone_or_all(tmp_path):
    backup(tmp_path / "backups" / "postgres", "postgres", 30 * H)  # a warning
    settings = args(tmp_path, backups={"directory": str(tmp_path / "backups"), "volumes": ["postgres"]})
    # by default the tiers only, as before: existing Nagios services and textfiles do not change
    code, out = cli(tmp_path, settings)
    assert code == 0 and out.startswith("STORAGE OK - all 1 tier(s) ok | ") and "[freshness]" not in out
    assert "age'=" not in out
    # --freshness: its own service, the tiers not checked
    code, out = cli(tmp_path, settings, "--freshness")
    assert code == 1, out
    first = out.splitlines()[0]
    assert first.startswith("FRESHNESS WARNING - 1 alert(s): freshness %s/backups/postgres: newest backup" % tmp_path)
    assert "used'=" not in first and "'backup postgres age'=108" in first
    assert "[warm]" not in out and "[freshness] WARNING" in out
    # --all: both, one status
    code, out = cli(tmp_path, settings, "--all")
    assert code == 1 and out.startswith("STORAGE WARNING - 1 alert(s): freshness ")
    assert "used'=" in out.splitlines()[0] and "[warm] OK" in out
    for old in (tmp_path / "backups" / "postgres").iterdir():
        old.unlink()
    backup(tmp_path / "backups" / "postgres", "postgres", H)
    code, out = cli(tmp_path, settings, "--all")
    assert code == 0 and out.startswith("STORAGE OK - all 1 tier(s) and 1 freshness check(s) ok | ")
    code, out = cli(tmp_path, settings, "--freshness")
    assert code == 0 and out.startswith("FRESHNESS OK - all 1 freshness check(s) ok | ")


def test_cli_freshness_without_checks_or_with_sinks_is_unknown(tmp_path):
    code, out = cli(tmp_path, args(tmp_path), "--freshness")
    assert code == 3
    assert out.startswith("STORAGE UNKNOWN - config: --freshness: the config has no freshness checks")
    settings = args(tmp_path, last_run={"state_dir": str(tmp_path)})
    code, out = cli(tmp_path, settings, "--freshness", "--sinks")
    assert code == 3 and "--sinks writes the whole picture" in out
