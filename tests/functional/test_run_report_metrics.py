"""The run report's textfile passes `promtool check metrics` (names, HELP, TYPE, units)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    empty_state,
    merge_dead_run,
    merge_run,
    normalise_step,
    render_textfile,
)

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None and not os.environ.get("CI"),
    reason="promtool (Debian's prometheus package) is not installed; `make deps` installs it",
)


def promtool_check(text):
    assert PROMTOOL, "promtool is missing: the test command must install Debian's prometheus package"
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def step(name, status, figures=None, message=""):
    return normalise_step(
        {"name": name, "status": status, "started": 100.0, "ended": 160.5, "figures": figures, "reason": message}
    )


def test_a_run_with_every_kind_of_step_lints_clean():
    state = merge_run(
        empty_state(),
        [
            step("health", "success"),
            step("backup", "failed", {"files_archived": 1, "bytes_archived": 1 << 30}, 'lvcreate: "vg_jts" is full'),
            step("migrate", "success", {"files_moved": 12, "bytes_moved": 4096, "files_failed": 0}),
            step("archive", "skipped", {}, "/mnt/synology is not mounted"),
            step("cleanup", "success", {"files_pruned": 3, "bytes_pruned": 77}),
        ],
        "run-1",
        "inv-1",
        90.0,
        170.0,
    )
    rc, out = promtool_check(render_textfile(state))
    assert rc == 0 and out.strip() == "", out


def test_a_killed_run_lints_clean():
    state = merge_dead_run(empty_state(), "inv-2", 500.0, "jts-lifecycle.service failed before the run reported")
    rc, out = promtool_check(render_textfile(state))
    assert rc == 0 and out.strip() == "", out
