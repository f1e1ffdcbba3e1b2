"""The ClickHouse storage configuration plan (clickhouse_storage_plan): a superset of what the server has."""

from __future__ import annotations

import copy
import re

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.clickhouse_storage import clickhouse_storage_plan

WANTED = {
    "policy": "hot_cold",
    "server_path": "/var/lib/clickhouse",
    "move_factor": 0.1,
    "cold_volume": "cold",
    "hot": {"path": "/var/lib/clickhouse", "disk": "hot", "volume": "hot"},
    "warm": {"enabled": True, "path": "/data/warm-storage/clickhouse", "disk": "warm"},
    "nas": {"enabled": False, "path": "/mnt/synology/jts/clickhouse", "disk": "nas", "volume": "nas"},
}


def wanted(**changes):
    result = copy.deepcopy(WANTED)
    for key, value in changes.items():
        if isinstance(value, dict):
            result[key].update(value)
        else:
            result[key] = value
    return result


def volumes(plan):
    return [(v["name"], v["disks"]) for v in plan["policies"][0]["volumes"]]


def test_lvm_layout_hot_is_the_default_disk_cold_is_warm():
    plan = clickhouse_storage_plan(wanted())
    assert plan["disks"] == [{"name": "warm", "path": "/data/warm-storage/clickhouse/"}]
    assert volumes(plan) == [("hot", ["default"]), ("cold", ["warm"])]
    assert plan["directories"] == [{"path": "/data/warm-storage/clickhouse/", "tier": "warm"}]
    assert plan["policies"][0]["settings"] == [("move_factor", "0.1")]
    assert plan["kept"] == []


def test_the_servers_own_path_is_checked_when_it_is_the_hot_disk():
    assert clickhouse_storage_plan(wanted())["mount_checks"] == [
        {"path": "/var/lib/clickhouse/", "tier": "hot"},
        {"path": "/data/warm-storage/clickhouse/", "tier": "warm"},
    ]
    other = clickhouse_storage_plan(wanted(hot={"path": "/data/jts/hot/clickhouse/data"}))
    assert other["mount_checks"] == other["directories"]


def test_hot_path_elsewhere_is_a_disk_of_its_own():
    plan = clickhouse_storage_plan(wanted(hot={"path": "/data/jts/hot/clickhouse/data"}))
    assert plan["disks"][0] == {"name": "hot", "path": "/data/jts/hot/clickhouse/data/"}
    assert volumes(plan)[0] == ("hot", ["hot"])
    assert plan["directories"][0] == {"path": "/data/jts/hot/clickhouse/data/", "tier": "hot"}


def test_nas_only_when_asked_never_written_on_insert():
    plan = clickhouse_storage_plan(wanted(nas={"enabled": True, "prefer_not_to_merge": True}))
    assert volumes(plan) == [("hot", ["default"]), ("cold", ["warm"]), ("nas", ["nas"])]
    nas = plan["policies"][0]["volumes"][2]
    assert nas["settings"] == [("perform_ttl_move_on_insert", "false"), ("prefer_not_to_merge", "true")]
    assert {"path": "/mnt/synology/jts/clickhouse/", "tier": "nas"} in plan["directories"]


def test_nas_without_warm_is_the_cold_volume():
    plan = clickhouse_storage_plan(wanted(warm={"enabled": False}, nas={"enabled": True}))
    assert volumes(plan) == [("hot", ["default"]), ("cold", ["nas"])]


def test_no_cold_disk_is_refused():
    with pytest.raises(AnsibleFilterError, match="no cold disk"):
        clickhouse_storage_plan(wanted(warm={"enabled": False}))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"warm": {"path": "/var/lib/clickhouse"}}, "one directory or one inside the other"),
        ({"warm": {"path": "/var/lib/clickhouse/warm"}}, "one directory or one inside the other"),
        ({"warm": {"path": "/var/lib"}}, "one directory or one inside the other"),
        ({"nas": {"enabled": True, "path": "/data/warm-storage/clickhouse/nas"}}, "one inside the other"),
        ({"warm": {"path": "data/warm"}}, "absolute path"),
        ({"warm": {"path": "/data/../etc"}}, "must not contain"),
        ({"warm": {"disk": "default"}}, "like another disk"),
        ({"nas": {"enabled": True, "disk": "warm"}}, "like another disk"),
        ({"warm": {"disk": "warm disk"}}, "letters, digits and underscores"),
        ({"policy": "hot-cold"}, "letters, digits and underscores"),
        ({"nas": {"enabled": True, "volume": "cold"}}, "two volumes share a name"),
    ],
)
def test_bad_layouts_are_refused(change, message):
    with pytest.raises(AnsibleFilterError, match=re.escape(message)):
        clickhouse_storage_plan(wanted(**change))


OWN = """<?xml version="1.0"?>
<clickhouse>
  <storage_configuration>
    <disks>
      <warm><type>local</type><path>/data/warm-storage/clickhouse/</path></warm>
      <nas><path>/mnt/synology/jts/clickhouse/</path><keep_free_space_bytes>1024</keep_free_space_bytes></nas>
    </disks>
    <policies>
      <hot_cold>
        <volumes>
          <hot><disk>default</disk></hot>
          <cold><disk>warm</disk></cold>
          <nas><disk>nas</disk><perform_ttl_move_on_insert>false</perform_ttl_move_on_insert></nas>
        </volumes>
        <move_factor>0.2</move_factor>
      </hot_cold>
      <archive_only>
        <volumes><main><disk>nas</disk></main></volumes>
      </archive_only>
    </policies>
  </storage_configuration>
</clickhouse>
"""


def test_a_disk_and_volume_no_longer_asked_for_are_kept():
    plan = clickhouse_storage_plan(wanted(), OWN, "", "/etc/ch/jts.xml")
    nas = next(d for d in plan["disks"] if d["name"] == "nas")
    assert nas["children"] == [
        "<path>/mnt/synology/jts/clickhouse/</path>",
        "<keep_free_space_bytes>1024</keep_free_space_bytes>",
    ]
    assert volumes(plan) == [("hot", ["default"]), ("cold", ["warm"]), ("nas", ["nas"])]
    assert plan["policies"][0]["volumes"][2]["children"] == [
        "<perform_ttl_move_on_insert>false</perform_ttl_move_on_insert>"
    ]
    # other policies of the file stay as they were
    assert plan["policies"][1] == {
        "name": "archive_only",
        "children": ["<volumes><main><disk>nas</disk></main></volumes>"],
    }
    assert any(
        k.startswith("disk nas (/mnt/synology/jts/clickhouse/) is kept from /etc/ch/jts.xml") for k in plan["kept"]
    )
    assert any(k.startswith("volume nas of policy hot_cold is kept") for k in plan["kept"])
    assert any(k.startswith("policy archive_only is kept") for k in plan["kept"])
    assert len(plan["kept"]) == 3  # one message per thing kept


def test_the_same_inventory_again_keeps_nothing_extra():
    first = clickhouse_storage_plan(wanted(nas={"enabled": True}))
    own = OWN.replace("<archive_only>", "<!--").replace("</archive_only>", "-->")
    again = clickhouse_storage_plan(wanted(nas={"enabled": True}), own)
    assert volumes(again) == volumes(first)
    assert [d["name"] for d in again["disks"]] == ["warm", "nas"]
    assert again["kept"] == []


EFFECTIVE = """<clickhouse>
  <path>/var/lib/clickhouse/</path>
  <storage_configuration>
    <disks>
      <s3cold><type>s3</type><endpoint>https://s3.internal/b/</endpoint></s3cold>
      <old_sata><path>/srv/sata/ch/</path></old_sata>
    </disks>
    <policies>
      <hot_cold>
        <volumes>
          <hot><disk>default</disk></hot>
          <cold><disk>warm</disk><disk>old_sata</disk></cold>
          <archive><disk>s3cold</disk></archive>
        </volumes>
      </hot_cold>
    </policies>
  </storage_configuration>
</clickhouse>"""


def test_the_servers_loaded_policy_keeps_its_volumes_and_disks():
    plan = clickhouse_storage_plan(wanted(), "", EFFECTIVE)
    assert volumes(plan) == [("hot", ["default"]), ("cold", ["warm", "old_sata"]), ("archive", ["s3cold"])]
    # the disks are defined in the server's other files: not repeated here
    assert [d["name"] for d in plan["disks"]] == ["warm"]


def test_a_disk_whose_path_changes_is_refused():
    with pytest.raises(
        AnsibleFilterError, match=r"disk 'warm' is at /data/warm-storage/clickhouse/ in /etc/ch/jts.xml"
    ):
        clickhouse_storage_plan(wanted(warm={"path": "/data/warm2/clickhouse"}), OWN, "", "/etc/ch/jts.xml")


def test_a_disk_of_another_type_is_refused():
    effective = EFFECTIVE.replace("<s3cold>", "<warm>").replace("</s3cold>", "</warm>").replace(">s3cold<", ">warm<")
    with pytest.raises(AnsibleFilterError, match="disk 'warm' is of type s3"):
        clickhouse_storage_plan(wanted(), "", effective)


def test_a_disk_cannot_change_volumes():
    with pytest.raises(AnsibleFilterError, match=r"disk 'warm' is in volume 'cold'.*puts it in volume 'nas'"):
        clickhouse_storage_plan(
            wanted(
                warm={"enabled": False},
                nas={"enabled": True, "disk": "warm", "path": "/data/warm-storage/clickhouse"},
                cold_volume="nas",
            ),
            OWN.replace("<nas>", "<x>").replace("</nas>", "</x>"),
        )


def test_a_new_disk_on_a_directory_another_disk_of_the_server_uses_is_refused():
    with pytest.raises(AnsibleFilterError, match="old_sata"):
        clickhouse_storage_plan(wanted(nas={"enabled": True, "path": "/srv/sata/ch"}), "", EFFECTIVE)


def test_dtd_is_refused():
    evil = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clickhouse>&a;</clickhouse>'
    with pytest.raises(AnsibleFilterError, match="DOCTYPE"):
        clickhouse_storage_plan(wanted(), evil)


def test_broken_xml_is_refused_with_its_source():
    with pytest.raises(AnsibleFilterError, match=re.escape("/etc/ch/jts.xml is not valid XML")):
        clickhouse_storage_plan(wanted(), "<clickhouse>", "", "/etc/ch/jts.xml")
