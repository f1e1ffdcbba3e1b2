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
