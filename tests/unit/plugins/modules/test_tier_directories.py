"""Tests for the tier_directories module shell: arguments, check mode, diff and failure."""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.modules import tier_directories


def test_check_mode_changes_nothing_and_returns_a_diff(run_module, tmp_path):
    target = tmp_path / "svc"
    result = run_module(tier_directories, {"directories": [{"path": str(target), "mode": "0750"}]}, check_mode=True)
    assert result["changed"] is True
    assert result["directories"][0]["state"] == "create"
    assert result["diff"]["after"].startswith(str(target))
    assert not target.exists()
    assert result.commands == []


def test_a_refusal_fails_without_a_path_key_that_ansible_would_stat(run_module, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_module(tier_directories, {"directories": [{"path": str(tmp_path / "file")}]})
    assert result["failed"] is True
    assert "not a directory" in result["msg"]
    assert "path" not in result
    assert result["directory"] == str(tmp_path / "file")


def test_the_directories_are_made(run_module, tmp_path):
    target = tmp_path / "a" / "b"
    uid, gid = str(os.geteuid()), str(os.getegid())
    result = run_module(
        tier_directories, {"directories": [{"path": str(target), "owner": uid, "group": gid, "mode": "0700"}]}
    )
    assert result["changed"] is True
    assert oct(os.stat(target).st_mode & 0o777) == "0o700"


def test_missing_parents_are_reported_in_the_result_and_the_diff(run_module, tmp_path):
    target = tmp_path / "p" / "svc"
    result = run_module(tier_directories, {"directories": [{"path": str(target), "mode": "0750"}]}, diff=True)
    assert result["parents"] == [str(tmp_path / "p")]
    assert result["diff"]["after"].endswith("%s root:root 0755\n" % (tmp_path / "p"))
    assert result["msg"] == "1 of 1 directories made or changed, and 1 missing parent made"


def test_an_unquoted_decimal_mode_fails_naming_the_directory(run_module, tmp_path):
    target = tmp_path / "svc"
    result = run_module(tier_directories, {"directories": [{"path": str(target), "mode": 750}]})
    assert result["failed"] is True
    expected = 'mode 750 of %s is a number: YAML reads an unquoted 750 as decimal (mode 01356); quote it: "0750"'
    assert result["msg"] == expected % target
    assert not target.exists()


def test_a_nul_byte_in_a_path_fails_without_a_traceback(run_module, tmp_path):
    result = run_module(tier_directories, {"directories": [{"path": str(tmp_path) + "/a\0b"}]})
    assert result["failed"] is True
    assert "has a NUL byte" in result["msg"]


def test_a_negative_timeout_fails(run_module, tmp_path):
    result = run_module(tier_directories, {"directories": [{"path": str(tmp_path / "t")}], "timeout": -1})
    assert result["failed"] is True
    assert result["msg"] == "timeout -1.0 is not a number of seconds (0 for no limit, or more)"
    assert not (tmp_path / "t").exists()
