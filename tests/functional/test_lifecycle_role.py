"""The lifecycle role's core (pause switch, run lock, step isolation, clean-up) run for real
against localhost with temporary directories.

Runs that must overlap use a small callback plugin (written into the test's directory) that
sleeps before the tasks named in JTS_TEST_PAUSE: before the step, so that the run holding the
lock keeps it, and before a stale lock's take-over, so that a second run reaches it late.
"""

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
DEAD_HOLDER = "run=19700101T000000Z-dead pid=4242 controller=gone target=localhost started=1970-01-01T00:00:00Z"
PAUSE_CALLBACK = """
from __future__ import annotations

import os
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "jts_test_pause"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_task_start(self, task, is_conditional):
        for item in os.environ.get("JTS_TEST_PAUSE", "").split(";"):
            name, _, seconds = item.rpartition("=")
            if name and name in task.get_name():
                time.sleep(float(seconds))
"""


def lock_dir(tmp_path):
    return tmp_path / "jts" / "lifecycle.lock.d"


def make_lock(tmp_path, token=DEAD_HOLDER, age=0.0):
    """A lock as a run leaves it: the directory with its owner token (none if token is None)."""
    lock = lock_dir(tmp_path)
    lock.parent.mkdir(mode=0o700, exist_ok=True)
    lock.mkdir()
    if token is not None:
        (lock / "owner").write_text(token + "\n")
    past = time.time() - age
    os.utime(lock, (past, past))
    return lock


def lifecycle_cmd(tmp_path, extra_vars, check=False):
    play = tmp_path / "play.yml"
    play.write_text("- hosts: localhost\n  gather_facts: false\n  roles:\n    - role: jts.tiered_storage.lifecycle\n")
    variables = {
        "lifecycle_steps": ["cleanup"],
        "lifecycle_pause_file": str(tmp_path / "paused"),
        "lifecycle_lock_dir": str(lock_dir(tmp_path)),
        "lifecycle_cleanup_temp_paths": [{"path": str(tmp_path / "temp"), "mount": "/"}],
        "ansible_python_interpreter": str(BIN / "python"),
    }
    variables.update(extra_vars)
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
    if check:
        cmd.append("--check")
    return cmd


def lifecycle_env(tmp_path, pause=""):
    plugins = tmp_path / "callback_plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "jts_test_pause.py").write_text(PAUSE_CALLBACK)
    return dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_CALLBACK_PLUGINS=str(plugins),
        ANSIBLE_CALLBACKS_ENABLED="jts_test_pause",
        JTS_TEST_PAUSE=pause,
    )


def run_lifecycle(tmp_path, extra_vars, check=False):
    cmd = lifecycle_cmd(tmp_path, extra_vars, check)
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=lifecycle_env(tmp_path), timeout=300)


def start_lifecycle(tmp_path, pause, extra_vars=None):
    return subprocess.Popen(
        lifecycle_cmd(tmp_path, extra_vars or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=lifecycle_env(tmp_path, pause),
    )


def flat(stdout):
    """The output with the callback's YAML line wrapping and quote doubling undone."""
    return " ".join(stdout.split()).replace("''", "'")


def proceeded(stdout):
    """The run got past the lock: its step started."""
    return "Include step cleanup" in stdout


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
    assert not lock_dir(tmp_path).exists(), "the run lock must be released"
    parent = lock_dir(tmp_path).parent.stat()
    assert (parent.st_uid, oct(parent.st_mode & 0o7777)) == (0, "0o700"), "the lock's parent is made root-only"
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


@pytest.mark.parametrize("check", [False, True], ids=["run", "check"])
def test_fresh_lock_refuses_naming_the_holder(tmp_path, temp_tree, check):
    """(a) A run holding the lock: the next run, even in check mode, stops and says who holds it."""
    old, _new = temp_tree
    holder = "run=20250101T023000Z-1 pid=31337 controller=db1 target=db1 started=2025-01-01T02:30:00Z"
    lock = make_lock(tmp_path, holder, age=60)
    result = run_lifecycle(tmp_path, {}, check=check)
    assert result.returncode != 0, result.stdout
    assert f"Another lifecycle run holds {lock}" in flat(result.stdout)
    assert holder in flat(result.stdout), "the refusal names the holder"
    assert not proceeded(result.stdout)
    assert all(p.exists() for p in old)
    assert (lock / "owner").read_text() == holder + "\n", "someone else's lock must not be touched"


def test_fresh_lock_without_token_refuses(tmp_path, temp_tree):
    """A lock being taken this very moment (no token yet): refused, holder not known yet."""
    old, _new = temp_tree
    lock = make_lock(tmp_path, None, age=1)
    result = run_lifecycle(tmp_path, {})
    assert result.returncode != 0
    assert f"Another lifecycle run holds {lock}" in flat(result.stdout)
    assert "no owner token yet" in flat(result.stdout)
    assert all(p.exists() for p in old)
    assert lock.is_dir() and not any(lock.iterdir())


def test_stale_lock_is_taken_over_with_a_warning(tmp_path, temp_tree):
    """(b) A lock left by a killed run, older than lifecycle_lock_stale_after: taken over, said loudly."""
    old, _new = temp_tree
    make_lock(tmp_path, DEAD_HOLDER, age=2 * DAY)
    result = run_lifecycle(tmp_path, {})
    assert result.returncode == 0, result.stdout
    assert "Took over the stale run lock" in flat(result.stdout)
    assert DEAD_HOLDER in flat(result.stdout), "the warning names the run that left the lock"
    assert not any(p.exists() for p in old)
    assert not lock_dir(tmp_path).exists(), "the taken-over lock is released at the end"


def test_check_mode_leaves_a_stale_lock_alone(tmp_path, temp_tree):
    old, _new = temp_tree
    lock = make_lock(tmp_path, DEAD_HOLDER, age=2 * DAY)
    before = lock.stat()
    result = run_lifecycle(tmp_path, {}, check=True)
    assert result.returncode == 0, result.stdout
    assert "Would take over the stale run lock" in flat(result.stdout)
    assert all(p.exists() for p in old)
    after = lock.stat()
    assert (after.st_ino, after.st_mtime) == (before.st_ino, before.st_mtime)
    assert sorted(p.name for p in lock.iterdir()) == ["owner"]
    assert (lock / "owner").read_text() == DEAD_HOLDER + "\n"


def test_check_mode_creates_no_lock_parent(tmp_path, temp_tree):
    result = run_lifecycle(tmp_path, {}, check=True)
    assert result.returncode == 0, result.stdout
    assert not lock_dir(tmp_path).parent.exists()


def test_stale_lock_without_token_is_refused(tmp_path, temp_tree):
    """A stale lock with no token (made by hand, or a run killed between mkdir and its token) has
    no identity to check a take-over against: left to the operator."""
    old, _new = temp_tree
    lock = make_lock(tmp_path, None, age=2 * DAY)
    result = run_lifecycle(tmp_path, {})
    assert result.returncode != 0, result.stdout
    assert f"{lock} is stale but has no owner token" in flat(result.stdout)
    assert all(p.exists() for p in old)
    assert lock.is_dir()


# (start delay of the second run, its pause before taking over the stale lock): at the same moment
# (three times), the second run reaching the stale lock after the first took it over (the old
# stat/rm/mkdir code let it remove the first run's new lock: both ran), and staggered starts.
RACES = [(0.0, 0.0), (0.0, 0.0), (0.0, 0.0), (0.0, 1.5), (0.3, 0.0), (0.7, 0.0)]


@pytest.mark.parametrize(("delay", "pause"), RACES)
def test_two_runs_on_one_stale_lock_exactly_one_proceeds(tmp_path, temp_tree, delay, pause):
    """(c) Two runs started together against one stale lock: exactly one runs its steps."""
    make_lock(tmp_path, DEAD_HOLDER, age=2 * DAY)
    hold = "Include step=3"  # the winner keeps the lock while the other run decides
    first = start_lifecycle(tmp_path, hold)
    time.sleep(delay)
    second = start_lifecycle(tmp_path, f"{hold};Take over a stale run lock={pause}")
    outputs = [proc.communicate(timeout=300)[0] for proc in (first, second)]
    codes = [first.returncode, second.returncode]
    ran = [proceeded(out) for out in outputs]
    assert ran.count(True) == 1, f"rc={codes}\n" + "\n=====\n".join(outputs)
    winner, loser = (0, 1) if ran[0] else (1, 0)
    assert codes[winner] == 0, outputs[winner]
    assert codes[loser] != 0, outputs[loser]
    assert str(lock_dir(tmp_path)) in flat(outputs[loser])
    assert not lock_dir(tmp_path).exists(), "the winner released the lock"


def test_release_leaves_a_lock_that_is_no_longer_this_runs(tmp_path, temp_tree):
    """A run whose lock was taken over while it ran must not remove the new holder's lock."""
    lock = lock_dir(tmp_path)
    other = "run=20250101T023000Z-2 pid=2 controller=db1 target=db1 started=2025-01-01T02:30:00Z"
    lock.parent.mkdir(mode=0o700)
    proc = start_lifecycle(tmp_path, "Include step=4")
    head = []
    for line in proc.stdout:  # up to the step: the run holds its lock from here on
        head.append(line)
        if proceeded(line):
            break
    assert lock.is_dir(), "".join(head)
    (lock / "owner").write_text(other + "\n")  # as a take-over by another run writes it
    out = "".join(head) + proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    assert lock.is_dir(), "the other run's lock must be left in place"
    assert (lock / "owner").read_text() == other + "\n"
    assert "no longer this run's" in flat(out)


@pytest.mark.parametrize("bad", ["symlink", "unprivileged owner", "group-writable", "other-writable"])
def test_unsafe_lock_parent_is_refused(tmp_path, temp_tree, bad):
    """(d) The lock's parent must be a real directory only root can change, else the run stops."""
    old, _new = temp_tree
    parent = lock_dir(tmp_path).parent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    if bad == "symlink":
        parent.symlink_to(elsewhere)
    else:
        parent.mkdir(mode=0o700)
        if bad == "unprivileged owner":
            os.chown(parent, 65534, 65534)
        else:
            os.chmod(parent, 0o770 if bad == "group-writable" else 0o707)
    result = run_lifecycle(tmp_path, {})
    assert result.returncode != 0, result.stdout
    assert f"The run lock's parent {parent} " in flat(result.stdout)
    assert not proceeded(result.stdout)
    assert all(p.exists() for p in old)
    assert not any(elsewhere.iterdir()), "nothing is made through the symlink"
    if bad != "symlink":
        assert not any(parent.iterdir()), "no lock is taken in an unsafe parent"


def test_stale_after_shorter_than_the_timer_timeout_is_refused(tmp_path, temp_tree):
    result = run_lifecycle(tmp_path, {"lifecycle_lock_stale_after": 3600, "lifecycle_timer_timeout": 14400})
    assert result.returncode != 0
    assert "lifecycle_lock_stale_after" in flat(result.stdout)
    assert not lock_dir(tmp_path).parent.exists()


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
    assert not lock_dir(tmp_path).exists()


def test_bad_age_is_refused_with_the_variable_name(tmp_path, temp_tree):
    old, _new = temp_tree
    result = run_lifecycle(tmp_path, {"lifecycle_cleanup_temp_age": "7x"})
    assert result.returncode != 0
    assert "lifecycle_cleanup_temp_age" in result.stdout
    assert all(p.exists() for p in old)
    assert not lock_dir(tmp_path).exists()


def test_unknown_step_is_refused(tmp_path, temp_tree):
    result = run_lifecycle(tmp_path, {"lifecycle_steps": ["cleanup", "defrag"]})
    assert result.returncode != 0
    assert "defrag" in result.stdout
