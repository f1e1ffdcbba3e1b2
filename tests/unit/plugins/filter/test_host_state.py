"""Read-once filter: what each LV holds, from one wipefs --json of several devices."""

from __future__ import annotations

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.host_state import signatures_by_device

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
