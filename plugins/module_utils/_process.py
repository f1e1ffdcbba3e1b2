# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running a system tool with a time-out: the child is killed, the caller never hangs.

Two ways, one error (``ProcessTimeout``):

* ``run_timed(argv, timeout, ...)``: ``subprocess`` directly (C locale, no stdin), for code that
  runs outside a module (``jts-storage-check``, ``_health_cli``) or needs a process group and
  inherited descriptors (``_nas_archive_rsync``: ``own_group=True, keep_fds=..., die_with_parent=True,
  grace=5``; it catches ``ProcessTimeout`` and raises its ``RsyncTimeout`` with ``exc.stderr``).
* ``ModuleRunner(module)``: ``module.run_command`` under coreutils ``timeout --signal=KILL`` when
  the host has it (the ``storage_health`` module).

Both are called ``runner(argv, timeout) -> (rc, stdout, stderr)``. ``ProcessTimeout`` is a
``ProbeTimeout`` (``_timeout``), so code that handles a stalled probe handles a stalled tool too.
A call in a forked child (a ``stat`` on a dead NFS mount) is ``_timeout.call_with_timeout``, not this.
"""

from __future__ import annotations

import os
import signal
import subprocess

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout

C_LOCALE = {"LC_ALL": "C", "LANG": "C"}
# exit codes of coreutils timeout: 124 after TERM, 137 (128 + 9) after --signal=KILL
TIMEOUT_CODES = (124, 137)


class ProcessTimeout(JtsError, ProbeTimeout):
    """``argv`` did not finish within ``timeout`` seconds and was killed.

    ``stdout`` and ``stderr`` hold what it wrote before (empty when unknown).
    """

    def __init__(self, argv, timeout, stdout="", stderr="", msg=None):
        if msg is None:
            msg = "%s did not finish within %.1fs" % (str(argv[0]).rsplit("/", 1)[-1], timeout)
        super().__init__(msg)
        self.argv = list(argv)
        self.timeout = timeout
        self.stdout = stdout
        self.stderr = stderr


def _die_with_parent():
    """In the child before exec: SIGKILL when the parent dies (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)
    except Exception:  # noqa: S110 - not Linux, or no libc: nothing more to do
        pass


def _text(data):
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else (data or "")


def run_timed(argv, timeout, own_group=False, keep_fds=(), die_with_parent=False, grace=0.5):
    """``(rc, stdout, stderr)`` of ``argv`` (C locale, text); ProcessTimeout after ``timeout`` seconds.

    On a time-out the child (with ``own_group``: its whole process group) gets SIGKILL and its pipes
    are read for at most ``grace`` seconds more: a child stuck in the kernel must not hold the caller.
    ``keep_fds`` are inherited (a lock); ``die_with_parent`` kills the child when the caller dies
    (the caller must be single-threaded: it uses ``preexec_fn``).
    """
    env = dict(os.environ, **C_LOCALE)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=own_group,
        pass_fds=tuple(keep_fds),
        preexec_fn=_die_with_parent if die_with_parent else None,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            if own_group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
        except OSError:
            pass
        out = err = b""
        try:
            out, err = proc.communicate(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        raise ProcessTimeout(argv, timeout, _text(out), _text(err)) from None
    return proc.returncode, _text(out), _text(err)


class ModuleRunner:
    """Runs tools through ``module.run_command``, each under coreutils ``timeout`` when present."""

    def __init__(self, module):
        self.module = module
        self.timeout_bin = module.get_bin_path("timeout")

    def __call__(self, argv, timeout):
        cmd = list(argv)
        if self.timeout_bin:
            cmd = [self.timeout_bin, "--signal=KILL", "%.1f" % max(timeout, 0.1), *cmd]
        rc, out, err = self.module.run_command(cmd, environ_update=dict(C_LOCALE))
        if self.timeout_bin and rc in TIMEOUT_CODES:
            raise ProcessTimeout(argv, timeout, out, err)
        return rc, out, err

    def which(self, name):
        return self.module.get_bin_path(name)
