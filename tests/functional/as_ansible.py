"""Running the collection's modules and playbooks as Ansible runs them, for the functional tests.

A module runs as ``python plugins/modules/<name>.py args.json`` (its arguments in a file, the
collection importable from .collections); a playbook runs with this checkout's ansible-playbook on
localhost over the local connection, extra vars as JSON, the checkout's ansible.cfg and no colour.
Used by the functional test files that run modules, roles or playbooks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def ansible_env(base=None, **extra):
    """The environment of ansible-playbook: ``base`` (os.environ) with this checkout's ansible.cfg."""
    return dict(base or os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", **extra)


def playbook(play, variables, *options, env=None, timeout=300):
    """``ansible-playbook`` of ``play`` on localhost with ``variables``; the completed process (text)."""
    cmd = [str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(variables), str(play)]
    return subprocess.run(
        [*cmd, *options], capture_output=True, text=True, cwd=ROOT, env=env or ansible_env(), timeout=timeout
    )


# a task after the role's: shows a registered result as a debug message (a quoted YAML scalar)
SHOW = "    - name: Show the registered result\n      ansible.builtin.debug:\n        msg: %s\n"


def tasks_from_play(path, name, tasks_from, after=""):
    """Write a play that runs the lifecycle role's ``tasks_from`` file as task ``name``, then ``after``."""
    path.write_text(
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n"
        "    - name: %s\n      ansible.builtin.include_role:\n"
        "        name: jts.tiered_storage.lifecycle\n        tasks_from: %s\n%s" % (name, tasks_from, after)
    )
    return path


def module_cmd(module, tmp_path, args, check_mode=False, env=None):
    """The argv and environment that run plugins/modules/``module``.py with ``args`` as Ansible does."""
    args = dict(args)
    if check_mode:
        args["_ansible_check_mode"] = True
    path = tmp_path / ("args-%d.json" % time.monotonic_ns())
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(env or os.environ, PYTHONPATH=str(ROOT / ".collections"))
    return [sys.executable, str(ROOT / "plugins" / "modules" / ("%s.py" % module)), str(path)], env


def module_result(cmd, env, timeout):
    """Run ``cmd`` (from module_cmd); its JSON result and the completed process (bytes)."""
    proc = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout, check=False)
    try:
        return json.loads(proc.stdout), proc
    except ValueError:
        pytest.fail("module output is not JSON: %r %r" % (proc.stdout[-2000:], proc.stderr[-2000:]))
