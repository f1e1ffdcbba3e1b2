"""storage_health on the lab VM after the side effects (Molecule's testinfra verifier).

side_effects/storage_health.yml filled the warm tier, overflowed a snapshot and took the NAS away,
then cleaned up and wrote /run/jts-health-sidefx/jts_storage.prom; during the outage it wrote
nas_away.prom. These checks parse both textfiles as Prometheus exposition format, run the
installed jts-storage-check (exit code, --json, perfdata) and look for what the side effect must
not leave behind.
"""

from __future__ import annotations

import json
import re

TEXTFILE = "/run/jts-health-sidefx/jts_storage.prom"
NAS_AWAY = "/run/jts-health-sidefx/nas_away.prom"
CHECK = "/usr/local/bin/jts-storage-check"

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"'
_SAMPLE = re.compile(r"^(%s)(?:\{(%s(?:,%s)*)\})? (\S+)$" % (_NAME, _LABEL, _LABEL))
_VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+)|[+-]?Inf|NaN)$")
_PERF = re.compile(r"^'(?:[^']|'')+'=-?\d+(?:\.\d+)?(?:%|B|s)?;[0-9.]*;[0-9.]*;[0-9.]*;[0-9.]*$")


def parse_exposition(text):
    """``{family: [(labels, value)]}``; fails on anything the text format does not allow."""
    assert text.endswith("\n")
    families, types, current = {}, {}, None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            current = line.split(" ", 3)[2]
            assert current not in families, "family repeated: %s" % line
            families[current] = []
        elif line.startswith("# TYPE "):
            _h, _t, name, kind = line.split(" ", 3)
            assert name == current and kind in ("gauge", "counter"), line
            types[name] = kind
        else:
            match = _SAMPLE.match(line)
            assert match and match.group(1) == current and current in types, "bad sample line: %r" % line
            assert _VALUE.match(match.group(match.lastindex)), line
            labels = dict(re.findall(_LABEL, match.group(2) or ""))
            families[current].append((labels, float(match.group(match.lastindex))))
    assert set(families) == set(types)
    return families


def one(families, name, **labels):
    found = [v for lab, v in families[name] if all(lab.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, (name, labels, families.get(name))
    return found[0]


def test_textfile_after_cleanup_is_valid_and_healthy(host):
    families = parse_exposition(host.file(TEXTFILE).content_string)
    assert one(families, "jts_storage_status") == 0
    assert one(families, "jts_storage_nas_up", tier="cold") == 1
    assert one(families, "jts_storage_alerts", severity="critical") == 0
    assert 0 < one(families, "jts_storage_used_ratio", tier="warm", mount="/data/warm-storage") < 0.8
    assert one(families, "jts_storage_mount_ok", tier="cold", mount="/mnt/synology") == 1
    assert {lab["mount"] for lab, _v in families["jts_storage_free_bytes"]} >= {
        "/var/lib/postgresql",
        "/data/warm-storage",
        "/mnt/synology",
    }
    assert one(families, "jts_storage_vg_free_bytes", tier="hot", vg="vg_jts") > 0


def test_textfile_of_the_nas_outage(host):
    families = parse_exposition(host.file(NAS_AWAY).content_string)
    assert one(families, "jts_storage_nas_up", tier="cold") == 0
    assert one(families, "jts_storage_status") == 2
    assert one(families, "jts_storage_path_up", tier="cold", path="/mnt/synology") == 0
    assert one(families, "jts_storage_alerts", severity="critical") >= 1


def test_no_temporary_textfile_left(host):
    left = host.run("find /run/jts-health-sidefx -name '.*' -type f -print").stdout.strip()
    assert left == ""


def test_check_command_ok_with_perfdata(host):
    cmd = host.run(CHECK)
    assert cmd.rc == 0, cmd.stdout + cmd.stderr
    status, _, perf = cmd.stdout.splitlines()[0].partition(" | ")
    assert status == "STORAGE OK - all 3 tier(s) ok"
    items = re.findall(r"'(?:[^']|'')+'=\S+", perf)
    assert items and all(_PERF.match(i) for i in items), perf
    assert "'cold nas up'=1;;1;0;1" in items


def test_check_command_json(host):
    cmd = host.run("%s --json", CHECK)
    assert cmd.rc == 0, cmd.stderr
    data = json.loads(cmd.stdout)
    assert data["status"] == "ok" and data["tier_order"] == ["hot", "warm", "cold"]
    assert data["wall_seconds"] < 1.0


def test_check_command_bad_config_is_unknown(host):
    cmd = host.run("%s --config /nonexistent/health.json", CHECK)
    assert cmd.rc == 3 and cmd.stdout.startswith("STORAGE UNKNOWN - config: cannot read")


def test_config_is_root_only_readable_when_it_holds_a_webhook(host):
    config = host.file("/etc/jts/storage-health.json")
    data = json.loads(config.content_string)
    assert config.user == "root"
    assert config.mode == (0o600 if data.get("webhook_url") else 0o644)


def test_journal_has_the_critical_alerts(host):
    cmd = host.run("journalctl --no-pager -q -t jts-health-sidefx")
    assert "CRITICAL tier=warm path=/data/warm-storage" in cmd.stdout
    assert "invalid" in cmd.stdout


def test_nothing_left_by_the_side_effect(host):
    assert not host.file("/data/warm-storage/sidefx-health-fill1.bin").exists
    assert not host.file("/data/warm-storage/sidefx-health-fill2.bin").exists
    assert not host.file("/var/lib/mongodb/sidefx-health-fill.bin").exists
    assert "sidefx_health_snap" not in host.run("lvs --noheadings -o lv_name vg_jts").stdout
    assert host.run("nft list table inet jtslab").rc != 0, "the NAS outage rules are still loaded"
