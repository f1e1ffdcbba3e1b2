"""Tests for storage_health's outputs: Prometheus textfile, perfdata, journal, webhook, the command.

The textfile is parsed back with a strict parser of the text exposition format (below); the
command (``_health_cli.main``) runs in-process with the system faked, and once against a real
stalled call (a FIFO nobody writes to) to show it returns UNKNOWN within its time-out.
"""

from __future__ import annotations

import io
import json
import os
import re
import time
import urllib.error

import pytest
from test_storage_health import GIB, LAB_TIERS, Fakes, lab_commands, vfs

from ansible_collections.jts.tiered_storage.plugins.module_utils import _health_cli, _health_sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_sinks import (
    SinkError,
    build_sinks,
    deliver,
    escape_label,
    journal_messages,
    perfdata,
    render_textfile,
    send_webhook,
    status_line,
    write_atomic,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import call_with_timeout

# ------------------------------------------------------------------------------ exposition format parser

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE_RE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)\})? (\S+)$" % (_NAME, _LABEL, _LABEL))
_VALUE_RE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|[+-]?Inf|NaN)$")


def _unescape(value):
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "\\": "\\", '"': '"'}[m.group(1)], value)


def parse_exposition(text):
    """``{family: {"help", "type", "samples": [(labels dict, float)]}}``; AssertionError when invalid."""
    assert text.endswith("\n"), "the file must end with a newline"
    families = {}
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        where = "line %d: %r" % (number, line)
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert re.match("^%s$" % _NAME, name), where
            assert name not in families, "family repeated: " + where
            families[name] = {"help": help_text, "type": None, "samples": []}
            current = name
        elif line.startswith("# TYPE "):
            name, _, kind = line[7:].partition(" ")
            assert name == current and families[name]["type"] is None, where
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), where
            assert not families[name]["samples"], "TYPE after samples: " + where
            families[name]["type"] = kind
        else:
            assert not line.startswith("#") and line.strip(), "unexpected line: " + where
            match = _SAMPLE_RE.match(line)
            assert match, "not a sample: " + where
            name, labels_text, value = match.group(1), match.group(2), match.group(match.lastindex)
            assert name == current, "sample outside its family: " + where
            assert _VALUE_RE.match(value), "bad value: " + where
            labels = {k: _unescape(v) for k, v in re.findall(_LABEL, labels_text or "")}
            assert len(labels) == len(re.findall(_LABEL, labels_text or "")), "label repeated: " + where
            families[name]["samples"].append((labels, float(value)))
    for name, family in families.items():
        assert family["type"] and family["samples"], "family without TYPE or samples: %s" % name
        keys = [tuple(sorted(labels.items())) for labels, _v in family["samples"]]
        assert len(keys) == len(set(keys)), "duplicate series in %s" % name
    return families


def test_parser_rejects_bad_files():
    for bad in [
        "jts_x 1\n",  # no HELP/TYPE
        '# HELP jts_x h\n# TYPE jts_x gauge\njts_x{a="b} 1\n',
        "# HELP jts_x h\n# TYPE jts_x gauge\njts_x 1\njts_x 2\n",
        "# HELP jts_x h\n# TYPE jts_x gauge\njts_x one\n",
        "# HELP jts_x h\n# TYPE jts_x gauge\njts_x 1",
    ]:
        with pytest.raises(AssertionError):
            parse_exposition(bad)


# ------------------------------------------------------------------------------ results to render


def lab_result(lvs="lvs_vg_jts_lab.json", **vfs_overrides):
    fakes = Fakes(commands=lab_commands(lvs=lvs), statvfs=vfs_overrides)
    return fakes.check({"tiers": LAB_TIERS})


def value(families, name, **labels):
    found = [
        v for lab, v in families["jts_storage_" + name]["samples"] if all(lab.get(k) == x for k, x in labels.items())
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


def test_textfile_is_valid_exposition_format_with_every_metric():
    result = lab_result(**{"/data/warm-storage": vfs(10 * GIB, 8 * GIB, files=0, ffree=0)})
    families = parse_exposition(render_textfile(result))
    assert set(families) == {
        "jts_storage_used_ratio",
        "jts_storage_free_bytes",
        "jts_storage_size_bytes",
        "jts_storage_inode_used_ratio",
        "jts_storage_path_up",
        "jts_storage_mount_ok",
        "jts_storage_vg_free_bytes",
        "jts_storage_vg_free_ratio",
        "jts_storage_snapshot_fill_ratio",
        "jts_storage_snapshot_valid",
        "jts_storage_nas_up",
        "jts_storage_btrfs_device_errors",
        "jts_storage_tier_status",
        "jts_storage_status",
        "jts_storage_alerts",
        "jts_storage_check_duration_seconds",
        "jts_storage_last_run_timestamp_seconds",
    }
    assert all(f["type"] == "gauge" and f["help"] for f in families.values())
    assert value(families, "used_ratio", tier="warm", mount="/data/warm-storage", path="/data/warm-storage") == 0.8
    assert value(families, "free_bytes", tier="warm", path="/data/warm-storage") == 2 * GIB
    # btrfs has no inode limit: no inode series for it
    assert [lab["tier"] for lab, _v in families["jts_storage_inode_used_ratio"]["samples"]] == ["hot", "cold"]
    assert value(families, "snapshot_fill_ratio", lv="cap_mongodb_20261123T000000Z", origin="mongodb") == 1.0
    assert value(families, "snapshot_valid", lv="cap_mongodb_20261123T000000Z") == 0
    assert value(families, "snapshot_fill_ratio", lv="cap_postgres_20261123T000000Z") == 0.0002
    assert value(families, "nas_up", tier="cold", server="127.0.0.1") == 1
    assert value(families, "vg_free_bytes", tier="hot", vg="vg_jts") == 1971322880
    assert value(families, "btrfs_device_errors", device="/dev/sda", counter="corruption_errs") == 0
    assert value(families, "alerts", severity="critical") == 1
    assert value(families, "alerts", severity="warning") == 1
    assert value(families, "alerts", severity="unknown") == 0
    assert value(families, "status") == 2
    assert value(families, "tier_status", tier="warm") == 1
    assert value(families, "mount_ok", tier="hot", mount="/var/lib/postgres") == 1
    assert value(families, "last_run_timestamp_seconds") == result["checked_at"]


def test_textfile_when_the_nas_is_away_and_a_path_is_missing():
    fakes = Fakes(probe=(False, "refused"), commands=lab_commands(), statvfs={"/data/warm-storage": OSError(2, "x")})
    families = parse_exposition(render_textfile(fakes.check({"tiers": LAB_TIERS})))
    assert value(families, "nas_up", tier="cold") == 0
    assert value(families, "path_up", tier="cold", path="/mnt/synology") == 0
    assert value(families, "path_up", tier="warm", path="/data/warm-storage") == 0
    assert value(families, "status") == 2


def test_label_values_are_escaped_and_parse_back():
    assert escape_label('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    fakes = Fakes()
    weird = '/srv/we"ird\\dir'
    families = parse_exposition(render_textfile(fakes.check({"tiers": [{"name": "t", "paths": [weird]}]})))
    assert value(families, "path_up", path=weird) == 1


def test_write_atomic_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "jts.prom"
    target.write_text("old\n")
    write_atomic(str(target), "new\n")
    assert target.read_text() == "new\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jts.prom"]


def test_write_atomic_cleans_up_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "jts.prom"

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_health_sinks.os, "rename", boom)
    with pytest.raises(OSError):
        write_atomic(str(target), "x\n")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------ perfdata and status line

_PERF_RE = re.compile(r"^'(?:[^']|'')+'=-?\d+(?:\.\d+)?(?:%|B|s)?;[0-9.]*;[0-9.]*;[0-9.]*;[0-9.]*$")


def test_perfdata_items_follow_the_plugin_format():
    result = lab_result(**{"/data/warm-storage": vfs(10 * GIB, 8 * GIB, files=0, ffree=0)})
    items = re.findall(r"'(?:[^']|'')+'=\S+", perfdata(result))
    assert items and " ".join(items) == perfdata(result)
    for item in items:
        assert _PERF_RE.match(item), item
    assert "'warm /data/warm-storage used'=80%;80;90;0;100" in items
    assert "'warm /data/warm-storage free'=%dB;;;0;%d" % (2 * GIB, 10 * GIB) in items
    assert "'hot snapshot cap_mongodb_20261123T000000Z'=100%;80;90;0;100" in items
    assert "'hot vg vg_jts free'=1971322880B;;;0;8585740288" in items
    assert "'cold nas up'=1;;1;0;1" in items
    assert not [i for i in items if "warm /data/warm-storage inodes" in i]


def test_perfdata_labels_quote_and_drop_equals():
    result = Fakes().check({"tiers": [{"name": "t", "paths": ["/srv/it's=odd"]}]})
    assert "'t /srv/it''s_odd used'=10%;80;90;0;100" in perfdata(result)


def test_status_line_shape():
    result = lab_result(**{"/data/warm-storage": vfs(10 * GIB, 8 * GIB, files=0, ffree=0)})
    line = status_line(result)
    text, _, perf = line.partition(" | ")
    assert text.startswith("STORAGE CRITICAL - 2 alert(s): hot /dev/vg_jts/cap_mongodb_20261123T000000Z: snapshot")
    assert "warm /data/warm-storage: 80.0% used" in text and "|" not in text
    assert perf == perfdata(result) and "\n" not in line
    ok = Fakes(commands=lab_commands()).check({"tiers": LAB_TIERS})
    assert status_line(ok).startswith("STORAGE OK - all 3 tier(s) ok | ")


def test_status_line_lists_three_alerts_and_counts_the_rest():
    fakes = Fakes(statvfs={"/p%d" % i: OSError(2, "gone") for i in range(5)})
    result = fakes.check({"tiers": [{"name": "t", "paths": ["/p%d" % i for i in range(5)]}]})
    assert "; and 2 more |" in status_line(result)


# ------------------------------------------------------------------------------ journal and webhook


def test_journal_priorities_by_severity():
    result = lab_result(**{"/data/warm-storage": vfs(10 * GIB, 8 * GIB)})
    messages = journal_messages(result)
    assert messages[0] == ("crit", "storage health CRITICAL: 1 critical, 1 warning, 0 unknown")
    assert [p for p, _m in messages[1:]] == ["crit", "warning"]
    assert messages[2][1].startswith("WARNING tier=warm path=/data/warm-storage: 80.0% used")


def test_journal_sink_runs_logger_with_argument_lists():
    result = lab_result()
    issued = []

    def runner(argv, timeout):
        issued.append(argv)
        return 0, "", ""

    assert build_sinks({"journal": "False"})["journal"] is False
    report = deliver(result, build_sinks({"journal": "true"}), runner, lambda n: "/usr/bin/" + n, "h")
    assert report == {"journal": {"identifier": "jts-storage-health", "sent": 2}}
    assert issued[0][:6] == ["/usr/bin/logger", "-t", "jts-storage-health", "-p", "user.crit", "--"]
    failing = deliver(result, build_sinks({"journal": True}), lambda a, t: (1, "", "no socket"), lambda n: "/x", "h")
    assert failing["journal"]["error"] == "logger failed (rc 1): no socket"
    missing = deliver(result, build_sinks({"journal": True}), runner, lambda n: None, "h")
    assert missing["journal"]["error"] == "logger (util-linux) not found"


class FakeResponse:
    status = 204

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_webhook_posts_json_with_a_timeout():
    seen = {}

    def opener(request, timeout):
        seen.update(url=request.full_url, timeout=timeout, method=request.get_method(), body=request.data)
        seen["type"] = request.get_header("Content-type")
        return FakeResponse()

    result = lab_result()
    result["report"] = "r"
    sinks = build_sinks({"webhook_url": "https://hook.example/t0ken", "webhook_timeout": 2.5})
    report = deliver(result, sinks, None, None, "jts-lab", opener=opener)
    assert report == {"webhook": {"sent": True, "http_status": 204}}
    assert seen["method"] == "POST" and seen["timeout"] == 2.5 and seen["type"] == "application/json"
    body = json.loads(seen["body"])
    assert body["host"] == "jts-lab" and body["status"] == "critical" and body["report"] == "r"
    assert body["alert_counts"] == {"critical": 1, "warning": 0, "unknown": 0} and len(body["alerts"]) == 1


def test_webhook_only_from_its_minimum_severity_and_not_in_check_mode():
    ok = Fakes(commands=lab_commands()).check({"tiers": LAB_TIERS})
    sinks = build_sinks({"webhook_url": "https://hook.example/t0ken"})
    report = deliver(ok, sinks, None, None, "h", opener=lambda r, timeout: pytest.fail("sent"))
    assert report["webhook"] == {"sent": False, "skipped": "status ok is below webhook_min_severity warning"}
    sinks = build_sinks({"webhook_url": "https://hook.example/t0ken", "webhook_min_severity": "ok"})
    report = deliver(ok, sinks, None, None, "h", check_mode=True, opener=lambda r, timeout: pytest.fail("sent"))
    assert report["webhook"] == {"sent": False, "skipped": "check mode"}


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (urllib.error.HTTPError("https://hook.example/t0ken", 403, "Forbidden", {}, None), "webhook answered HTTP 403"),
        (
            urllib.error.URLError("https://hook.example/t0ken unreachable"),
            "webhook not delivered: <webhook url> unreachable",
        ),
        (TimeoutError("timed out"), "webhook not delivered: timed out"),
    ],
)
def test_webhook_errors_never_show_the_url(error, message):
    def opener(request, timeout):
        raise error

    with pytest.raises(SinkError) as exc:
        send_webhook("https://hook.example/t0ken", {}, 1, opener)
    assert str(exc.value) == message and "t0ken" not in str(exc.value)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"textfile": "relative.prom"}, "textfile: 'relative.prom' is not an absolute path"),
        ({"webhook_timeout": "soon"}, "webhook_timeout: 'soon' is not a number"),
        ({"webhook_min_severity": "loud"}, "webhook_min_severity: 'loud' is not one of"),
        ({"journal_identifier": "two words"}, "journal_identifier: 'two words' must be one word"),
        ({"journal": "sometimes"}, "journal: 'sometimes' is not a boolean"),
    ],
)
def test_bad_sink_settings(settings, message):
    with pytest.raises(SinkError) as exc:
        build_sinks(settings)
    assert message in str(exc.value) and "t0ken" not in str(exc.value)


# ------------------------------------------------------------------------------ the command


def run_cli(tmp_path, settings, *args, fakes=None, **checker_args):
    config = tmp_path / "health.json"
    config.write_text(json.dumps(settings))
    out = io.StringIO()
    fakes = fakes or Fakes(commands=lab_commands())
    kwargs = {"read_file": fakes.read_file, "statvfs": fakes.statvfs, "probe": fakes.probe}
    kwargs.update(checker_args)
    original = _health_cli.run_check

    def run_check(settings, sinks=False, **kw):
        return original(settings, runner=fakes.runner, which_fn=fakes.which, host="jts-lab", sinks=sinks, **kw)

    _health_cli.run_check, saved = run_check, _health_cli.run_check
    try:
        code = _health_cli.main(["--config", str(config), *args], stdout=out, **kwargs)
    finally:
        _health_cli.run_check = saved
    return code, out.getvalue()


@pytest.mark.parametrize(
    ("used", "code", "word"),
    [(1, 0, "OK"), (8, 1, "WARNING"), (9, 2, "CRITICAL")],
)
def test_cli_exit_codes(tmp_path, used, code, word):
    fakes = Fakes(commands=lab_commands(), statvfs={"/data/warm-storage": vfs(10 * GIB, used * GIB)})
    got, out = run_cli(tmp_path, {"tiers": LAB_TIERS}, fakes=fakes)
    lines = out.splitlines()
    assert got == code
    assert lines[0].startswith("STORAGE %s - " % word) and " | " in lines[0]
    assert lines[1].startswith("Storage health of jts-lab: %s" % word)


def test_cli_report_is_a_table_per_tier_for_people(tmp_path):
    """`make lab` ends with this: mount, size, used, free, and options as expected or not."""
    mounts = (
        "/dev/mapper/vg_jts-postgres /var/lib/postgres ext4 rw,relatime 0 0\n"
        "/dev/sda /data/warm-storage btrfs rw,noatime,compress=zstd:3,autodefrag 0 0\n"
        "127.0.0.1:/srv/nas /mnt/synology nfs rw,hard,vers=3,rsize=1048576,wsize=1048576,timeo=600,retrans=2 0 0\n"
    )
    fakes = Fakes(commands=lab_commands(), statvfs={"/data/warm-storage": vfs(10 * GIB, 9 * GIB)})
    original = fakes.read_file
    fakes.read_file = lambda path: mounts if path == "/proc/self/mounts" else original(path)
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS}, "--report", fakes=fakes)
    lines = out.splitlines()
    assert code == 2
    assert lines[0].startswith("Storage health of jts-lab: CRITICAL"), "no Nagios line for people"
    header = lines.index("[hot] WARNING") + 1
    assert lines[header].split() == ["MOUNT", "FSTYPE", "SIZE", "USED", "FREE", "INODES", "OPTIONS"]
    row = lines[header + 1]
    assert row.split()[0] == "/var/lib/postgres" and row.endswith("missing noatime,commit=60")
    warm = next(line for line in lines if line.strip().startswith("/data/warm-storage"))
    assert " 90.0% " in warm and warm.endswith("as expected")


def test_cli_json(tmp_path):
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS}, "--json")
    data = json.loads(out)
    assert code == 0 and data["status"] == "ok" and data["exit_code"] == 0
    assert data["status_line"].startswith("STORAGE OK") and data["host"] == "jts-lab"
    assert set(data["tiers"]) == {"hot", "warm", "cold"} and "sinks" not in data


def test_cli_sinks_only_when_asked(tmp_path):
    prom = tmp_path / "jts.prom"
    code, _out = run_cli(tmp_path, {"tiers": LAB_TIERS, "textfile": str(prom)})
    assert code == 0 and not prom.exists()
    code, _out = run_cli(tmp_path, {"tiers": LAB_TIERS, "textfile": str(prom)}, "--sinks")
    assert code == 0 and parse_exposition(prom.read_text())["jts_storage_status"]["samples"] == [({}, 0.0)]
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS, "textfile": str(tmp_path / "no" / "x.prom")}, "--sinks")
    assert code == 0 and "sink textfile: cannot write" in out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "STORAGE UNKNOWN - config: cannot read"),
        ("{not json", "is not valid JSON"),
        (
            json.dumps({"tiers": [{"name": "warm", "paths": ["/d"], "critical": "high"}]}),
            "critical: 'high' is not a percentage",
        ),
        (json.dumps(["no"]), "must be a JSON object"),
    ],
)
def test_cli_config_errors_are_unknown(tmp_path, content, message):
    config = tmp_path / "cfg.json"
    if content is not None:
        config.write_text(content)
    out = io.StringIO()
    assert _health_cli.main(["-c", str(config)], stdout=out) == 3
    assert out.getvalue().startswith("STORAGE UNKNOWN - config: ") and message in out.getvalue()


def _open_fifo(path):
    with open(path) as handle:  # blocks: nobody ever opens the FIFO for writing
        return handle.read()


def test_cli_stalled_path_is_unknown_within_the_timeout(tmp_path):
    fifo = tmp_path / "stall"
    os.mkfifo(fifo)
    fakes = Fakes(commands=lab_commands())

    def statvfs(path, timeout):
        if path == "/data/warm-storage":
            return call_with_timeout(_open_fifo, (str(fifo),), timeout)  # a real blocked call in a child
        return fakes.statvfs(path, timeout)

    started = time.monotonic()
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS, "timeout": 2, "probe_timeout": 1}, fakes=fakes, statvfs=statvfs)
    elapsed = time.monotonic() - started
    assert code == 3, out
    assert out.startswith("STORAGE UNKNOWN - 1 alert(s): warm /data/warm-storage: /data/warm-storage did not answer")
    assert 0.9 < elapsed < 2 + 1


def test_cli_gives_up_one_second_after_its_timeout(tmp_path):
    """Whatever blocks, the timer ends the process with UNKNOWN (run in a child: it calls os._exit)."""
    config = tmp_path / "cfg.json"
    config.write_text(json.dumps({"tiers": [{"name": "t", "paths": ["/p"]}], "timeout": 0.5}))
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        out = os.fdopen(write_fd, "w")

        def hang(path, timeout):
            time.sleep(30)

        try:
            _health_cli.main(["-c", str(config)], stdout=out, statvfs=hang)
        finally:
            os._exit(99)
    os.close(write_fd)
    started = time.monotonic()
    _pid, status = os.waitpid(pid, 0)
    elapsed = time.monotonic() - started
    with os.fdopen(read_fd) as handle:
        output = handle.read()
    assert os.WEXITSTATUS(status) == 3
    assert output == "STORAGE UNKNOWN - the check did not finish within 0.5s (a stalled call?)\n"
    assert elapsed < 0.5 + 1


def test_subprocess_runner(tmp_path):
    rc, out, _err = _health_cli.subprocess_runner(["sh", "-c", "echo $LC_ALL; exit 3"], 5)
    assert (rc, out) == (3, "C\n")
    started = time.monotonic()
    with pytest.raises(_health_cli.ProbeTimeout):
        _health_cli.subprocess_runner(["sleep", "30"], 0.3)
    assert time.monotonic() - started < 1.5


def test_which_finds_sbin_tools(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert _health_cli.which("sh") in ("/usr/bin/sh", "/bin/sh")
    assert _health_cli.which("no-such-tool-jts") is None
