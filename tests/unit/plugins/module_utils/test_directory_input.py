"""Tests for _directory_input: tier_directories' paths, owners, groups and modes checked before any change."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _directory_input as di


@pytest.mark.parametrize("value, mode", [("0750", 0o750), ("750", 0o750), (0o2775, 0o2775), (" 0700 ", 0o700)])
def test_parse_mode_reads_octal(value, mode):
    assert di.parse_mode(value, "/x") == mode


@pytest.mark.parametrize("value", ["rwx", "0789", "17777", -1, True])
def test_parse_mode_refuses_what_is_not_an_octal_mode(value):
    with pytest.raises(di.DirectoryError, match="/x"):
        di.parse_mode(value, "/x")


def test_normalise_refuses_a_relative_path_and_conflicting_duplicates():
    with pytest.raises(di.DirectoryError, match="not absolute"):
        di.normalise([{"path": "data/x"}])
    with pytest.raises(di.DirectoryError, match="listed twice"):
        di.normalise([{"path": "/a", "mode": "0750"}, {"path": "/a/", "mode": "0755"}])
    same = di.normalise([{"path": "/a"}, {"path": "/a/"}])
    assert same == [{"path": "/a", "owner": "root", "group": "root", "mode": 0o755}]


@pytest.mark.parametrize("value", [750, 755, 644, 2775])
def test_a_mode_yaml_read_as_a_decimal_number_is_refused(value):
    with pytest.raises(di.DirectoryError, match=r'quote it: "0?%d"' % value):
        di.parse_mode(value, "/x")


@pytest.mark.parametrize("value, mode", [(0o750, 0o750), (0o644, 0o644), (0o1777, 0o1777), (0o2750, 0o2750)])
def test_a_mode_yaml_read_as_an_octal_number_is_taken_as_given(value, mode):
    assert di.parse_mode(value, "/x") == mode
