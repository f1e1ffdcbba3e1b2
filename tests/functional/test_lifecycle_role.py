"""The lifecycle role's core (pause switch, run lock, step isolation, clean-up) run for real
against localhost with temporary directories."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
DAY = 86400


def run_lifecycle(tmp_path, extra_vars, check=False):
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: jts.tiered_storage.lifecycle\n")
    variables = {
        "lifecycle_steps": ["cleanup"],
        "lifecycle_pause_file": str(tmp_path / "paused"),
        "lifecycle_lock_dir": str(tmp_path / "lock.d"),
        "lifecycle_cleanup_temp_paths": [{"path": str(tmp_path / "temp"), "mount": "/"}],
        "ansible_python_interpreter": str(BIN / "python"),
    }
    variables.update(extra_vars)
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
    if check:
        cmd.append("--check")
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)


@pytest.fixture
def temp_tree(tmp_path):
    temp = tmp_path / "temp"
    (temp / "sub").mkdir(parents=True)
    old = [temp / "old.tmp", temp / "sub" / "old name with spaces.tmp"]
    new = [temp / "new.tmp"]
    for path in old + new:
        path.write_text("x")
    past = time.time() - 4 * DAY
    for path in old:
        os.utime(path, (past, past))
    return old, new


def test_cleanup_removes_only_old_files(tmp_path, temp_tree):
    old, new = temp_tree
    result = run_lifecycle(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert not any(p.exists() for p in old)
    assert all(p.exists() for p in new)
    assert not (tmp_path / "lock.d").exists(), "the run lock must be released"
    again = run_lifecycle(tmp_path, {})
    assert "changed=0" in again.stdout


def test_check_mode_lists_and_keeps(tmp_path, temp_tree):
    old, _new = temp_tree
    result = run_lifecycle(tmp_path, {}, check=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert all(p.exists() for p in old)
    assert "Would remove 2 file(s)" in result.stdout


def test_pause_file_stops_every_step(tmp_path, temp_tree):
    old, _new = temp_tree
    (tmp_path / "paused").write_text("maintenance\n")
    result = run_lifecycle(tmp_path, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Lifecycle paused" in result.stdout
    assert all(p.exists() for p in old)


def test_pause_variable_stops_every_step(tmp_path, temp_tree):
    old, _new = temp_tree
    result = run_lifecycle(tmp_path, {"lifecycle_paused": True})
    assert result.returncode == 0
    assert all(p.exists() for p in old)


def test_held_lock_refuses_and_is_left_alone(tmp_path, temp_tree):
    old, _new = temp_tree
    (tmp_path / "lock.d").mkdir()
    result = run_lifecycle(tmp_path, {})
    assert result.returncode != 0
    assert "Another lifecycle run holds" in result.stdout
    assert all(p.exists() for p in old)
    assert (tmp_path / "lock.d").is_dir(), "someone else's lock must not be removed"


def test_stale_lock_is_taken_over(tmp_path, temp_tree):
    old, _new = temp_tree
    lock = tmp_path / "lock.d"
    lock.mkdir()
    past = time.time() - 2 * DAY
    os.utime(lock, (past, past))
    result = run_lifecycle(tmp_path, {})
    assert result.returncode == 0, result.stdout
    assert not any(p.exists() for p in old)


def test_missing_mount_skips_the_path_and_fails_the_run(tmp_path, temp_tree):
    """A night that could not do its work must not look like one that did: the run fails."""
    old, _new = temp_tree
    result = run_lifecycle(
        tmp_path, {"lifecycle_cleanup_temp_paths": [{"path": str(tmp_path / "temp"), "mount": str(tmp_path / "temp")}]}
    )
    assert result.returncode != 0, result.stdout
    assert "is not mounted" in result.stdout
    assert "Step cleanup skipped work because a tier is missing" in result.stdout
    assert "skipped for a missing tier" in result.stdout
    assert all(p.exists() for p in old)
    assert not (tmp_path / "lock.d").exists()


def test_bad_age_is_refused_with_the_variable_name(tmp_path, temp_tree):
    old, _new = temp_tree
    result = run_lifecycle(tmp_path, {"lifecycle_cleanup_temp_age": "7x"})
    assert result.returncode != 0
    assert "lifecycle_cleanup_temp_age" in result.stdout
    assert all(p.exists() for p in old)
    assert not (tmp_path / "lock.d").exists()


def test_unknown_step_is_refused(tmp_path, temp_tree):
    result = run_lifecycle(tmp_path, {"lifecycle_steps": ["cleanup", "defrag"]})
    assert result.returncode != 0
    assert "defrag" in result.stdout
