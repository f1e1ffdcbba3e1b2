"""_pg_tablespaces: the tablespace refusal (paths, resolved paths, devices, a mount that does not answer)."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_archive_ops import bounds_text
from ansible_collections.jts.tiered_storage.plugins.module_utils._pg_tablespaces import tablespace_refusals
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout

TIERS = {"warm": ("/data/warm-storage", "warm_tier_path"), "nas": ("/mnt/synology", "nas_path")}
SPACES = [{"name": "pg_default", "location": ""}]


def probe_says(**found):
    """A probe that finds ``path`` where it says and each root a mount point of its own (device 2)."""

    def probe(path, roots):
        out = {"real": path, "dev": 1, "roots": {root: {"dev": 2, "is_mount": True} for root in roots}}
        for root, info in found.items():
            if "real" in info:
                out["real"] = info["real"]
            if "dev" in info:
                out["dev"] = info["dev"]
            if root in out["roots"]:
                out["roots"][root].update({k: v for k, v in info.items() if k == "is_mount"})
                out["roots"][root]["dev"] = info.get("root_dev", 2)
        return out

    return probe


@pytest.mark.parametrize(
    "location, probe, tier, why",
    [
        ("/data/warm-storage/pg_ts", probe_says(), "warm", "lies below /data/warm-storage"),
        ("/mnt/synology/x/../pg", probe_says(), "nas", "lies below /mnt/synology"),
        ("/srv/ts", probe_says(**{"/data/warm-storage": {"real": "/data/warm-storage/ts"}}), "warm", "resolves to"),
        (
            "/srv/ts",
            probe_says(**{"/mnt/synology": {"dev": 7, "root_dev": 7}}),
            "nas",
            "is on the filesystem mounted at",
        ),
    ],
)
def test_a_tablespace_on_a_tier_is_refused(location, probe, tier, why):
    refusals = tablespace_refusals([*SPACES, {"name": "ts1", "location": location}], TIERS, [], 1, probe=probe)
    assert len(refusals) == 1 and refusals[0].startswith("tablespace ts1: ")
    assert why in refusals[0] and "allow_tablespaces_on: [%s]" % tier in refusals[0]
    assert tablespace_refusals([*SPACES, {"name": "ts1", "location": location}], TIERS, [tier], 1, probe=probe) == []


def test_same_device_counts_only_when_the_tier_is_a_mount_point():
    probe = probe_says(**{"/data/warm-storage": {"dev": 7, "root_dev": 7, "is_mount": False}})
    assert tablespace_refusals([{"name": "ts1", "location": "/srv/ts"}], TIERS, [], 1, probe=probe) == []


def test_a_location_that_does_not_answer_is_refused():
    def probe(path, roots):
        raise ProbeTimeout("no answer within 1.0s")

    refusals = tablespace_refusals([{"name": "ts1", "location": "/srv/ts"}], TIERS, ["warm"], 1, probe=probe)
    assert len(refusals) == 1 and "did not answer within 1s" in refusals[0] and "(nas, option nas_path)" in refusals[0]


def test_bounds_text():
    assert bounds_text("2020-01-01", None) == "FROM ('2020-01-01') TO (MAXVALUE)"
    assert bounds_text(None, "x") == "FROM (MINVALUE) TO ('x')"


def test_a_location_is_probed_once_and_a_silent_one_is_refused_once():
    calls = []

    def probe(path, *roots):
        calls.append(path)
        raise ProbeTimeout("no answer within 1.0s")

    refusals = tablespace_refusals([{"name": "ts1", "location": "/srv/ts"}], TIERS, [], 1, probe=probe)
    assert calls == ["/srv/ts"]
    assert len(refusals) == 1 and "(nas, option nas_path)" in refusals[0]
