"""Helpers for running Ansible modules in-process with ``run_command`` mocked.

Usage::

    def test_x(run_module):
        result = run_module(lvm_snapshot, {"vg": "vg_jts", ...},
                            commands=[(0, '{"report": []}', "")])
        assert result["changed"] is False
        assert result.commands[0][:2] == ["/usr/sbin/lvs", "--reportformat"]
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args


class ModuleExit(Exception):
    """Raised in place of ``sys.exit`` by exit_json/fail_json."""

    def __init__(self, result: dict, failed: bool):
        super().__init__(result)
        self.result = result
        self.failed = failed


class Result(dict):
    """The module's JSON result plus the commands it ran (argument lists)."""

    commands: list


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ModuleExit(kwargs, failed=False)


def _fail_json(self, msg, **kwargs):
    kwargs["failed"] = True
    kwargs["msg"] = msg
    raise ModuleExit(kwargs, failed=True)


@pytest.fixture
def run_module(monkeypatch):
    """Run ``module.main()`` with args; ``commands`` is a list of (rc, out, err) or a callable."""

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)
    monkeypatch.setattr(
        basic.AnsibleModule, "get_bin_path", lambda self, name, required=False, opt_dirs=None: f"/usr/bin/{name}"
    )

    def runner(module, args, commands=None, check_mode=False, diff=False):
        issued = []

        def fake_run_command(self, cmd, *a, **kw):
            issued.append(list(cmd))
            if callable(commands):
                return commands(list(cmd), **kw)
            if not commands:
                raise AssertionError(f"unexpected command: {cmd}")
            return commands.pop(0)

        all_args = dict(args)
        all_args["_ansible_check_mode"] = check_mode
        all_args["_ansible_diff"] = diff
        with patch_module_args(all_args), mock.patch.object(basic.AnsibleModule, "run_command", fake_run_command):
            with pytest.raises(ModuleExit) as exc:
                module.main()
        result = Result(json.loads(json.dumps(exc.value.result, default=str)))
        result.commands = issued
        return result

    return runner
