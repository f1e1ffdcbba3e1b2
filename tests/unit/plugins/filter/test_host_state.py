"""Read-once filters: which directories need ansible.builtin.file, what each LV holds."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.host_state import (
    parse_stat,
    paths_to_fix,
    signatures_by_device,
)

# stat --format '%F\t%U\t%G\t%a\t%n' /var/lib/postgres /var/lib/postgres/logs /data/local-backup /etc/fstab
STAT = (
    "directory\tpostgres\tpostgres\t750\t/var/lib/postgres\n"
    "directory\tpostgres\tpostgres\t755\t/var/lib/postgres/logs\n"
    "directory\troot\tbackup\t2750\t/data/local-backup\n"
    "regular file\troot\troot\t644\t/etc/fstab\n"
    "directory\troot\troot\t755\t/srv/name with\ttab\n"
)


def want(path, owner="root", group="root", mode="0755"):
    return {"path": path, "owner": owner, "group": group, "mode": mode}


def test_parse_stat_reads_modes_as_octal_and_keeps_tabs_in_names():
    found = parse_stat(STAT)
    assert found["/var/lib/postgres"] == {"type": "directory", "owner": "postgres", "group": "postgres", "mode": 0o750}
    assert found["/data/local-backup"]["mode"] == 0o2750
    assert "/srv/name with\ttab" in found


def test_a_directory_that_is_right_needs_nothing():
    assert paths_to_fix([want("/var/lib/postgres", "postgres", "postgres", "0750")], STAT) == []


@pytest.mark.parametrize(
    "item",
    [
        want("/var/lib/postgres", "root", "postgres", "0750"),  # owner differs
        want("/var/lib/postgres", "postgres", "root", "0750"),  # group differs
        want("/var/lib/postgres/logs", "postgres", "postgres", "0750"),  # mode differs
        want("/data/local-backup", "root", "backup", "0750"),  # setgid bit is a difference
        want("/var/lib/missing"),  # not reported: missing
        want("/etc/fstab", mode="0644"),  # not a directory
    ],
)
def test_what_differs_or_is_missing_is_returned(item):
    assert paths_to_fix([item], STAT) == [item]


def test_order_is_kept_so_parents_come_before_children():
    items = [want("/a"), want("/a/b"), want("/var/lib/postgres", "postgres", "postgres", "0750"), want("/a/c")]
    assert [i["path"] for i in paths_to_fix(items, STAT)] == ["/a", "/a/b", "/a/c"]


def test_defaults_and_trailing_slash():
    assert paths_to_fix([{"path": "/srv/name with\ttab/"}], STAT) == []


def test_integer_mode_is_read_as_octal_digits():
    assert paths_to_fix([want("/var/lib/postgres", "postgres", "postgres", 750)], STAT) == []


def test_empty_stat_output_means_everything_is_missing():
    items = [want("/x"), want("/y")]
    assert paths_to_fix(items, "") == items
    assert paths_to_fix(items, None) == items


@pytest.mark.parametrize(
    "wanted, message",
    [
        ("/x", "expected a list"),
        ([{"owner": "root"}], "needs a path"),
        ([want("/var/lib/postgres", "postgres", "postgres", "rwx")], "not an octal mode"),
    ],
)
def test_bad_input_is_rejected_with_a_message(wanted, message):
    with pytest.raises(AnsibleFilterError, match=message):
        paths_to_fix(wanted, STAT)


# wipefs --json /dev/vg_jts/postgres /dev/vg_jts/kafka /dev/vg_jts/redis on the lab VM (redis empty)
WIPEFS = json.dumps(
    {
        "signatures": [
            {"device": "postgres", "offset": "0x438", "type": "ext4", "uuid": "9b66", "label": None},
            {"device": "kafka", "offset": "0x0", "type": "xfs", "uuid": "1c2d", "label": None},
            {"device": "kafka", "offset": "0x1fe", "type": "dos", "uuid": None, "label": None},
        ]
    }
)


def test_signatures_by_device():
    assert signatures_by_device(WIPEFS) == {"postgres": ["ext4"], "kafka": ["xfs", "dos"]}


def test_no_output_is_no_signature():
    assert signatures_by_device("") == {}
    assert signatures_by_device(None) == {}
    assert signatures_by_device('{"signatures": [{"device": "a"}]}') == {"a": ["unknown"]}


def test_garbage_is_rejected():
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        signatures_by_device("wipefs: error")
