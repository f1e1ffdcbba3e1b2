"""Severities (_severity) and the boolean parser (_units.parse_bool) the health check and the sinks share."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import EXIT_CODES, worst
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_bool


@pytest.mark.parametrize(
    "statuses, expected",
    [
        ([], "ok"),
        (["ok", "warning"], "warning"),
        (["warning", "unknown"], "unknown"),
        (["critical", "unknown"], "critical"),
    ],
)
def test_worst_ranks_unknown_above_warning_and_below_critical(statuses, expected):
    assert worst(iter(statuses)) == expected


def test_exit_codes_are_nagios_ones():
    assert EXIT_CODES == {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


@pytest.mark.parametrize(
    "value, expected", [(True, True), ("yes", True), (" On ", True), ("1", True), ("no", False), ("", False)]
)
def test_parse_bool(value, expected):
    assert parse_bool(value, "journal") is expected


def test_parse_bool_refuses_anything_else_by_name():
    with pytest.raises(UnitError, match=r"journal: 'maybe' is not a boolean"):
        parse_bool("maybe", "journal")
