# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_sinks: the journal sender and the webhook sink's entry, shared by storage health and the run report.

(The webhook URL parsing and scrubbing are tested through storage_health in
tests/unit/plugins/modules/test_storage_health_webhook.py.)
"""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

URL = "https://hooks.example.internal/T0KEN"


def test_journal_lines_stop_at_the_first_failure_and_count_what_went():
    calls = []

    def runner(argv, timeout):
        calls.append((argv, timeout))
        return (0, "", "") if len(calls) == 1 else (1, "", "no journal\n")

    counter = {"sent": 0}
    with pytest.raises(_sinks.SinkError, match=r"^logger failed \(rc 1\): no journal$") as info:
        _sinks.send_journal_lines([("info", "a"), ("err", "b"), ("err", "c")], runner, "/bin/logger", "id", counter)
    assert isinstance(info.value, JtsError)
    assert counter == {"sent": 1}
    assert calls == [
        (["/bin/logger", "-t", "id", "-p", "user.info", "--", "a"], 5.0),
        (["/bin/logger", "-t", "id", "-p", "user.err", "--", "b"], 5.0),
    ]
    with pytest.raises(_sinks.SinkError, match=r"^logger \(util-linux\) not found$"):
        _sinks.send_journal_lines([("info", "a")], runner, None, "id")


def test_webhook_entry_order_error_skip_check_mode_then_send():
    bad = _sinks.parse_webhook_url("ftp://x")
    good = _sinks.parse_webhook_url(URL)

    def never():
        raise AssertionError("no payload when nothing is sent")

    assert _sinks.webhook_entry(bad, "quiet", never, 1) == {"sent": False, "error": bad.error}
    assert _sinks.webhook_entry(good, "quiet", never, 1, check_mode=True) == {"sent": False, "skipped": "quiet"}
    assert _sinks.webhook_entry(good, None, never, 1, check_mode=True) == {"sent": False, "skipped": "check mode"}

    def refuse(request, timeout):
        raise OSError("connect to %s failed" % URL)

    entry = _sinks.webhook_entry(good, None, lambda: {"a": 1}, 1, opener=refuse)
    assert entry == {"sent": False, "error": "webhook not delivered: connect to <webhook url> failed"}

    def broken_payload():
        raise KeyError(URL)

    entry = _sinks.webhook_entry(good, None, broken_payload, 1)
    assert entry["sent"] is False and "T0KEN" not in entry["error"]
