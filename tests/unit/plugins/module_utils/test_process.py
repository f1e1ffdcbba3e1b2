# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import time

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _process
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout


def test_run_timed_returns_text_in_c_locale():
    assert _process.run_timed(["sh", "-c", "echo $LC_ALL $LANG; echo e >&2; exit 3"], 5) == (3, "C C\n", "e\n")


@pytest.mark.parametrize("own_group", [False, True])
def test_run_timed_kills_and_keeps_what_was_written(own_group):
    started = time.monotonic()
    with pytest.raises(_process.ProcessTimeout) as info:
        _process.run_timed(["sh", "-c", "echo out; echo err >&2; exec sleep 30"], 0.3, own_group=own_group)
    assert time.monotonic() - started < 1.5
    exc = info.value
    assert isinstance(exc, ProbeTimeout) and isinstance(exc, JtsError)
    assert str(exc) == exc.msg == "sh did not finish within 0.3s"
    assert (exc.stdout, exc.stderr, exc.argv, exc.timeout) == (
        "out\n",
        "err\n",
        ["sh", "-c", "echo out; echo err >&2; exec sleep 30"],
        0.3,
    )


class FakeModule:
    def __init__(self, timeout_bin, rc):
        self.timeout_bin, self.rc, self.calls = timeout_bin, rc, []

    def get_bin_path(self, name):
        return self.timeout_bin if name == "timeout" else "/usr/bin/" + name

    def run_command(self, cmd, environ_update=None):
        self.calls.append((cmd, environ_update))
        return self.rc, "o", "e"


def test_module_runner_wraps_in_coreutils_timeout():
    module = FakeModule("/usr/bin/timeout", 0)
    runner = _process.ModuleRunner(module)
    assert runner(["/sbin/lvs", "-a"], 0.01) == (0, "o", "e")
    assert module.calls == [
        (["/usr/bin/timeout", "--signal=KILL", "0.1", "/sbin/lvs", "-a"], {"LC_ALL": "C", "LANG": "C"})
    ]
    assert runner.which("lvs") == "/usr/bin/lvs"


@pytest.mark.parametrize("rc", _process.TIMEOUT_CODES)
def test_module_runner_time_out_codes(rc):
    with pytest.raises(ProbeTimeout, match=r"^lvs did not finish within 2\.0s$"):
        _process.ModuleRunner(FakeModule("/usr/bin/timeout", rc))(["/sbin/lvs"], 2)
    # without coreutils timeout the code is the tool's own
    assert _process.ModuleRunner(FakeModule(None, rc))(["/sbin/lvs"], 2)[0] == rc
