# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's tools: fio or dd in a child that dies with us, killed after its time-out.

User: ``_benchmark_run`` (``run_tool`` is the default runner; the unit tests replace it) and
``_benchmark_target`` (``STOP_SIGNALS`` held off around the test file's creation and removal,
``Interrupted`` when one arrives).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """A stop signal arrived; the run cleans up and fails."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


_PRCTL = []


def _prctl():
    if not _PRCTL:
        try:
            _PRCTL.append(ctypes.CDLL(None, use_errno=True).prctl)
        except (OSError, AttributeError):
            _PRCTL.append(None)
    return _PRCTL[0]


def _child_setup(parent, prctl):
    """In the child before exec: die with ``parent`` (also if it died already), take stop signals again."""

    def setup():
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(127)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    return setup


def run_tool(argv, fd, timeout):
    """Run ``argv`` (fio or dd) with ``fd`` inherited; return (rc, stdout, stderr, timed_out).

    The tool gets its own process group and dies with this process; on a time-out or any
    exception (a stop signal) it is killed and waited for before this returns or raises. Stop
    signals wait while the child is forked, so none can leave a child this function does not know.
    """
    setup = _child_setup(os.getpid(), _prctl())
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(fd,),
            preexec_fn=setup,
            start_new_session=True,
            env=dict(os.environ, LC_ALL="C"),
        )
    except BaseException:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        raise
    try:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a signal that came meanwhile is handled here
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), False
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), True
    except BaseException:
        _kill(proc)
        proc.wait()
        raise


def _kill(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        proc.kill()


__all__ = ["PR_SET_PDEATHSIG", "STOP_SIGNALS", "Interrupted", "run_tool"]
