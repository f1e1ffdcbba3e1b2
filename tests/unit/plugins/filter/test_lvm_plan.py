from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.filter.lvm_plan import lvm_plan, vg_extents_for_device

MIB = 1024**2
GIB = 1024**3
EXT = 4 * MIB


def vols(*specs):
    return [{"name": n, "size": s, "mount": "/m/" + n} for n, s in specs]


def test_device_extents_account_for_alignment():
    assert vg_extents_for_device(8 * GIB, EXT, EXT) == 2047
    assert vg_extents_for_device(8 * GIB, EXT, 1 * MIB) == 2047
    assert vg_extents_for_device(2 * MIB, EXT, EXT) == 0


def test_absolute_and_percentage_sizes_become_extents():
    plan = lvm_plan(vols(("a", "1G"), ("b", "10%"), ("c", "5M")), 2000, EXT, "5%")
    assert plan["errors"] == []
    a, b, c = plan["volumes"]
    assert (a["extents"], a["size_lvol"], a["action"]) == (256, "1024m", "create")
    assert b["extents"] == 200  # 10% of 2000 extents
    assert c["extents"] == 2  # 5 MiB rounds up to two 4 MiB extents
    assert plan["summary"]["reserve_bytes"] == 100 * EXT


def test_plan_too_large_says_by_how_much():
    plan = lvm_plan(vols(("a", "7G"), ("b", "1G")), 2047, EXT, "5%")
    (error,) = plan["errors"]
    assert "does not fit the VG" in error
    # 8 GiB of volumes + 103 extents of reserve - 2047 extents = 104 extents = 416 MiB missing
    assert "416.0 MiB missing" in error


def test_reserve_is_kept_free_exactly():
    fits = lvm_plan(vols(("a", "%dM" % ((2047 - 103) * 4))), 2047, EXT, "5%")
    assert fits["errors"] == []
    over = lvm_plan(vols(("a", "%dM" % ((2047 - 102) * 4))), 2047, EXT, "5%")
    assert "4.0 MiB missing" in over["errors"][0]


def test_grow_keep_and_refused_shrink():
    existing = {"a": 256 * EXT, "b": 100 * EXT, "c": 500 * EXT}
    plan = lvm_plan(vols(("a", "1G"), ("b", "1G"), ("c", "1G")), 2047, EXT, "5%", existing)
    actions = {v["name"]: v["action"] for v in plan["volumes"]}
    assert actions == {"a": "keep", "b": "grow", "c": "keep"}
    (error,) = plan["errors"]
    assert "hot_tier_volumes[2] (c).size" in error
    assert "shrinking is refused" in error
    # the refused LV keeps its real size in the plan
    assert plan["volumes"][2]["size_bytes"] == 500 * EXT


@pytest.mark.parametrize(
    ("volumes", "fragment"),
    [
        (vols(("a", "12Q")), "hot_tier_volumes[0] (a).size: '12Q' is not a size"),
        (vols(("a", "150%")), "outside 0..100"),
        (vols(("a", "1G"), ("a", "1G")), "the LV name a appears twice"),
        (
            [{"name": "a", "size": "1G", "mount": "/x"}, {"name": "b", "size": "1G", "mount": "/x"}],
            "mount point /x appears twice",
        ),
        ([{"size": "1G"}], "has no name"),
        (vols(("a", "0")), "smaller than one extent"),
    ],
)
def test_bad_input_names_the_variable(volumes, fragment):
    plan = lvm_plan(volumes, 2047, EXT, "5%")
    assert any(fragment in e for e in plan["errors"]), plan["errors"]


def test_bad_reserve():
    plan = lvm_plan(vols(("a", "1G")), 2047, EXT, "lots")
    assert any("hot_tier_snapshot_reserve" in e for e in plan["errors"])
