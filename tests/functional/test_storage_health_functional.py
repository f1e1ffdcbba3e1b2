"""storage_health for real on this host: real statvfs on temporary directories, the real module
run as Ansible runs it, the lifecycle role's health step and install_health.yml, and the installed
jts-storage-check command run as a subprocess (exit codes, --json, perfdata, textfile, timing).

No loop devices or mounts are needed: the tiers are directories on whatever filesystem holds the
temporary directory, and thresholds of 0 and 100 make WARNING and CRITICAL certain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time

import pytest
from as_ansible import BIN, ROOT, SHOW, ansible_env, module_cmd, playbook, tasks_from_play

ENV = ansible_env()
PERF_ITEM = re.compile(r"^'(?:[^']|'')+'=-?\d+(?:\.\d+)?(?:%|B|s)?;[0-9.]*;[0-9.]*;[0-9.]*;[0-9.]*$")
SAMPLE = re.compile(r'^jts_storage_[a-z_]+(\{[a-z_]+="(?:[^"\\]|\\.)*"(,[a-z_]+="(?:[^"\\]|\\.)*")*\})? \S+$')


def closed_port():
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The lifecycle role's install_health.yml run for real into a temporary directory."""
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook not found in %s" % BIN)
    base = tmp_path_factory.mktemp("health-install")
    (base / "collections").symlink_to(ROOT / ".collections")
    play = tasks_from_play(base / "play.yml", "Install the check", "install_health")
    data = base / "data"
    data.mkdir()
    variables = {
        "lifecycle_install_dir": str(base),
        "lifecycle_health_config_file": str(base / "storage-health.json"),
        "lifecycle_health_check_command": str(base / "jts-storage-check"),
        "lifecycle_health_tiers": [{"name": "warm", "paths": [str(data)], "warning": 100, "critical": 100}],
        "lifecycle_health_textfile": str(base / "jts_storage.prom"),
        # freshness has tests of its own (test_storage_health_freshness_functional.py)
        "lifecycle_health_freshness": {},
        "ansible_python_interpreter": sys.executable,
    }
    result = playbook(play, variables, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    return base


def write_config(tmp_path, tiers, **settings):
    config = tmp_path / "health.json"
    config.write_text(json.dumps(dict(settings, tiers=tiers)))
    return config


def check(installed, config, *args):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(installed / "jts-storage-check"), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"),
    )
    return result, time.monotonic() - started


def test_install_writes_the_config_and_a_managed_wrapper(installed):
    config = json.loads((installed / "storage-health.json").read_text())
    assert config["tiers"][0]["name"] == "warm" and config["timeout"] == 10
    assert config["webhook_url"] is None and config["journal"] is True
    assert oct((installed / "storage-health.json").stat().st_mode & 0o777) == "0o644"
    wrapper = (installed / "jts-storage-check").read_text()
    assert wrapper.startswith("#!/usr/bin/python3\n#") and "Ansible managed" in wrapper
    assert json.dumps(str(installed / "collections")) in wrapper
    assert os.access(installed / "jts-storage-check", os.X_OK)


def test_installed_command_uses_its_default_config_within_its_budget(installed):
    # the wrapper passes the installed config (timeout 10 s); all tiers up: OK. Bounded by its own
    # budget, not timed (the host's CPU is shared; speed is benchmarks/' business).
    result, elapsed = check(installed, installed / "storage-health.json")
    assert result.returncode == 0, result.stdout + result.stderr
    status, _, perf = result.stdout.splitlines()[0].partition(" | ")
    assert status == "STORAGE OK - all 1 tier(s) ok"
    assert all(PERF_ITEM.match(item) for item in re.findall(r"'(?:[^']|'')+'=\S+", perf)), perf
    duration = float(re.search(r"'duration'=([0-9.]+)s", perf).group(1))
    assert duration <= 10, "checks took %.2fs, past the 10 s budget" % duration
    assert elapsed < 10 + 20, "the command took %.2fs (interpreter start included)" % elapsed


@pytest.mark.parametrize(
    ("warning", "critical", "code", "word"),
    [(100, 100, 0, "OK"), (0, 100, 1, "WARNING"), (0, 0, 2, "CRITICAL")],
)
def test_exit_codes_follow_the_thresholds(installed, tmp_path, warning, critical, code, word):
    config = write_config(
        tmp_path, [{"name": "warm", "paths": [str(tmp_path)], "warning": warning, "critical": critical}]
    )
    result, _elapsed = check(installed, config)
    assert result.returncode == code, result.stdout + result.stderr
    assert result.stdout.startswith("STORAGE %s - " % word)
    assert ("'warm %s used'=" % tmp_path) in result.stdout.splitlines()[0]


def test_missing_path_is_critical_and_json_is_complete(installed, tmp_path):
    config = write_config(tmp_path, [{"name": "cold", "paths": [str(tmp_path / "gone")]}])
    result, _elapsed = check(installed, config, "--json")
    assert result.returncode == 2
    data = json.loads(result.stdout)
    assert data["status"] == "critical" and data["exit_code"] == 2
    assert data["alerts"] == [
        {"severity": "critical", "tier": "cold", "path": str(tmp_path / "gone"), "message": "does not exist"}
    ]
    assert data["tiers"]["cold"]["paths"][0]["status"] == "critical"


def test_nas_away_is_critical_within_the_timeout(installed, tmp_path):
    port = closed_port()
    config = write_config(
        tmp_path,
        [{"name": "cold", "nas_server": "127.0.0.1", "nas_port": port, "paths": [str(tmp_path)]}],
        timeout=2,
        probe_timeout=1,
    )
    result, elapsed = check(installed, config)
    assert result.returncode == 2, result.stdout
    assert "cold 127.0.0.1:%d: NAS unreachable" % port in result.stdout
    assert "'cold nas up'=0;;1;0;1" in result.stdout
    assert elapsed < 2 + 1 + 1.5  # time-out + 1 s + interpreter start


def test_bad_config_is_unknown(installed, tmp_path):
    config = write_config(tmp_path, [{"name": "warm", "paths": [str(tmp_path)], "warning": "eighty"}])
    result, _elapsed = check(installed, config)
    assert result.returncode == 3
    assert result.stdout == (
        "STORAGE UNKNOWN - config: tier warm: warning: 'eighty' is not a percentage (examples: 80, 80%, 12.5%)\n"
    )
    result, _elapsed = check(installed, tmp_path / "missing.json")
    assert result.returncode == 3 and "cannot read" in result.stdout


def test_sinks_write_a_valid_textfile(installed, tmp_path):
    prom = tmp_path / "jts_storage.prom"
    config = write_config(tmp_path, [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}], textfile=str(prom))
    result, _elapsed = check(installed, config, "--sinks")
    assert result.returncode == 1, result.stdout
    lines = prom.read_text().splitlines()
    families = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert len(families) == len(set(families)) == len([line for line in lines if line.startswith("# HELP ")])
    assert all(SAMPLE.match(line) for line in lines if not line.startswith("#")), lines
    assert "jts_storage_status 1" in lines and 'jts_storage_alerts{severity="warning"} 1' in lines
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def module_proc(tmp_path, args, env):
    """The module as Ansible runs it: ``python storage_health.py args.json``, in ``env``."""
    cmd, env = module_cmd("storage_health", tmp_path, args, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)


def run_module(tmp_path, args):
    return json.loads(module_proc(tmp_path, args, ENV).stdout)


def test_module_for_real(tmp_path):
    prom = tmp_path / "jts.prom"
    data = tmp_path / "data"
    data.mkdir()
    mounts = {}
    with open("/proc/self/mounts") as handle:
        for line in handle:
            fields = line.split()
            mounts[fields[1]] = fields[2]
    root_type = mounts.get("/")
    tiers = [
        {"name": "warm", "paths": [str(data)], "warning": 0},
        {"name": "root", "mounts": [{"path": "/", "fstype": root_type}]},
        {"name": "gone", "paths": [str(tmp_path / "nope")]},
    ]
    result = run_module(tmp_path, {"tiers": tiers, "textfile": str(prom)})
    assert result.get("failed") is not True, result
    assert result["status"] == "critical" and result["changed"] is False
    assert [(a["tier"], a["severity"]) for a in result["alerts"]] == [("warm", "warning"), ("gone", "critical")]
    assert result["tiers"]["root"]["mounts"][0]["mounted"] is True
    assert result["sinks"]["textfile"]["written"] is True and "jts_storage_status 2" in prom.read_text()
    failed = run_module(tmp_path, {"tiers": tiers, "fail_on": "critical"})
    assert failed["failed"] is True and failed["msg"].startswith("storage health is CRITICAL (fail_on=critical)")


def test_health_step_of_the_lifecycle_role(tmp_path):
    if not (BIN / "ansible-playbook").exists():
        pytest.skip("ansible-playbook not found in %s" % BIN)
    if shutil.which("logger") is None:
        pytest.skip("logger (util-linux) not found")
    prom = tmp_path / "textfile" / "jts_storage.prom"
    play = tasks_from_play(
        tmp_path / "play.yml", "Run the health step", "health", SHOW % "'HEALTH={{ __lifecycle_health.status }}'"
    )
    variables = {
        "lifecycle_health_tiers": [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}],
        "lifecycle_health_textfile": str(prom),
        "lifecycle_health_journal": False,
        "lifecycle_health_freshness": {},
        "ansible_python_interpreter": sys.executable,
    }
    result = playbook(play, variables, env=ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "HEALTH=warning" in result.stdout and "[warm] WARNING" in result.stdout
    assert "jts_storage_status 1" in prom.read_text()
    variables["lifecycle_health_fail_on"] = "warning"
    result = playbook(play, variables, env=ENV)
    assert result.returncode != 0
    assert "Storage health is WARNING (lifecycle_health_fail_on: warning)" in result.stdout


# ------------------------------------------------------------------------------ webhook (issue 14, case 11)


class Receiver:
    """A real HTTP receiver on 127.0.0.1 in a thread; records every request, answers 204.

    ``/moved`` answers 302 to ``/notify`` (the webhook must not follow it).
    """

    def __init__(self):
        import http.server
        import threading

        self.requests = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body}
                )
                self._answer()

            def do_GET(self):
                outer.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers), "body": b""})
                self._answer()

            def _answer(self):
                if self.path.startswith("/moved"):
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:%d/notify" % outer.port)
                else:
                    self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


# a proxy in the environment must not carry these requests elsewhere
NO_PROXY_ENV = {k: v for k, v in ENV.items() if not k.lower().endswith("_proxy")}
BASIC = "Basic " + __import__("base64").b64encode(b"alerts:TOKEN").decode()


def run_module_no_proxy(tmp_path, args):
    result = module_proc(tmp_path, args, NO_PROXY_ENV)
    assert "TOKEN" not in result.stdout + result.stderr
    assert result.stdout.strip(), result.stderr[-2000:].replace("TOKEN", "<token>")
    return json.loads(result.stdout)


def test_module_webhook_credentials_arrive_as_a_basic_header(tmp_path, receiver):
    prom = tmp_path / "jts.prom"
    tiers = [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}]
    url = "http://alerts:TOKEN@127.0.0.1:%d/notify?from=jts" % receiver.port
    result = run_module_no_proxy(tmp_path, {"tiers": tiers, "textfile": str(prom), "webhook_url": url})
    assert result["sinks"]["webhook"] == {"sent": True, "http_status": 204}
    (request,) = receiver.requests
    assert request["method"] == "POST" and request["path"] == "/notify?from=jts"
    assert request["headers"]["Authorization"] == BASIC
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert body["status"] == "warning" and body["alert_counts"]["warning"] == 1
    assert "jts_storage_status 1" in prom.read_text()


def test_module_bad_webhook_url_keeps_the_report_and_the_textfile(tmp_path):
    prom = tmp_path / "jts.prom"
    tiers = [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}]
    # userinfo and a port that is not a number: http.client used to raise InvalidURL, uncaught
    url = "https://alerts:TOKEN@hooks.example.internal:notify/x"
    result = run_module_no_proxy(tmp_path, {"tiers": tiers, "textfile": str(prom), "webhook_url": url})
    assert result.get("failed") is not True and result["status"] == "warning"
    assert result["report"].startswith("Storage health of ")
    assert result["sinks"]["textfile"]["written"] is True and "jts_storage_status 1" in prom.read_text()
    error = "webhook_url: the port is not a number from 1 to 65535"
    assert result["sinks"]["webhook"] == {"sent": False, "error": error}
    # a string, or (ansible-core 2.19+) a WarningSummary holding it
    warnings = [w["event"]["msg"] if isinstance(w, dict) else w for w in result["warnings"]]
    assert warnings == ["storage_health sink webhook: " + error]


def test_module_webhook_does_not_follow_redirects(tmp_path, receiver):
    tiers = [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}]
    url = "http://127.0.0.1:%d/moved?t=TOKEN" % receiver.port
    result = run_module_no_proxy(tmp_path, {"tiers": tiers, "webhook_url": url})
    assert [r["path"] for r in receiver.requests] == ["/moved?t=TOKEN"], "the redirect was followed"
    assert result["sinks"]["webhook"] == {
        "sent": False,
        "error": "webhook answered HTTP 302 (redirects are not followed)",
    }


def test_installed_command_webhook_header_and_bad_url(installed, tmp_path, receiver):
    prom = tmp_path / "jts.prom"
    tiers = [{"name": "warm", "paths": [str(tmp_path)], "warning": 0}]
    good = "http://alerts:TOKEN@127.0.0.1:%d/notify" % receiver.port
    for url, line in (
        (good, None),
        ("https://alerts:TOKEN@hooks.example.internal:notify/x", "sink webhook: webhook_url: the port is not a number"),
    ):
        config = write_config(tmp_path, tiers, textfile=str(prom), webhook_url=url)
        prom.unlink(missing_ok=True)
        result = subprocess.run(
            [sys.executable, str(installed / "jts-storage-check"), "--config", str(config), "--sinks"],
            capture_output=True,
            text=True,
            timeout=30,
            env=dict(NO_PROXY_ENV, PYTHONDONTWRITEBYTECODE="1"),
        )
        assert "TOKEN" not in result.stdout + result.stderr
        assert result.returncode == 1 and result.stdout.startswith("STORAGE WARNING - "), result.stdout + result.stderr
        assert "jts_storage_status 1" in prom.read_text()
        if line:
            assert [x for x in result.stdout.splitlines() if x.startswith(line)], result.stdout
    assert [r["headers"]["Authorization"] for r in receiver.requests] == [BASIC]
