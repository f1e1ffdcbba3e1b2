# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Freeze the filesystems of a multi-LV snapshot set, with a watchdog that thaws them within a bound.

Users: lvm_snapshot (``consistency`` with ``method: fsfreeze``).

``Freezer.freeze()`` first starts a **watchdog**: a detached child in a new session
(``[sys.executable, '-c', WATCHDOG, seconds, fsfreeze, mount...]``, no shell) that sleeps for the
bound and then runs ``fsfreeze -u`` on every mount. Being in its own session, it survives the module
being killed (SIGKILL included) and the controller's connection going away. Then each mount is frozen
with ``fsfreeze -f``; when one fails, those already frozen are thawed and nothing is left frozen.
``thaw()`` (called in ``finally`` by the caller) thaws every frozen mount, then stops the watchdog.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

# Run as ``python -c WATCHDOG <seconds> <fsfreeze> <mount>...``: ignore hang-ups and interrupts
# (its parent may die), sleep for the bound, thaw every mount (errors ignored: a mount that is not
# frozen any more answers EINVAL). SIGTERM from the module ends it when the thaw was done in time.
WATCHDOG = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
    "signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
    "time.sleep(float(sys.argv[1]))\n"
    "for mount in sys.argv[3:]:\n"
    "    subprocess.call([sys.argv[2], '-u', mount], stdin=subprocess.DEVNULL,\n"
    "                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
)


class FreezeError(JtsError):
    """A mount could not be frozen (those frozen before were thawed)."""


def validate_mounts(mounts, ismount=os.path.ismount):
    """Mount points: absolute, normalised, unique, not ``/``, and mounted. Returns the list."""
    seen = []
    for mount in mounts:
        if not mount or not os.path.isabs(mount) or os.path.normpath(mount) != mount:
            raise FreezeError("mount %r: an absolute, normalised path is needed" % (mount,))
        if mount == "/":
            raise FreezeError("mount /: the root filesystem is never frozen (the module itself runs from it)")
        if mount in seen:
            raise FreezeError("mount %s is listed twice" % mount)
        if not ismount(mount):
            raise FreezeError("%s is not a mount point" % mount)
        seen.append(mount)
    return seen


class Freezer:
    """Freeze and thaw ``mounts``; ``run`` is ``module.run_command``-like (argv -> rc, out, err)."""

    def __init__(self, run, fsfreeze, mounts, timeout, popen=None, python=None, clock=time.monotonic):
        self.run = run
        self.fsfreeze = fsfreeze
        self.mounts = list(mounts)
        self.timeout = timeout
        self.popen = popen or subprocess.Popen
        self.python = python or sys.executable
        self.clock = clock
        self.frozen = []
        self.watchdog = None
        self.frozen_at = None

    def watchdog_argv(self):
        return [self.python, "-c", WATCHDOG, str(self.timeout), self.fsfreeze, *self.mounts]

    def freeze(self):
        """Start the watchdog, then freeze each mount; on a failure thaw what was frozen and raise."""
        self.watchdog = self.popen(
            self.watchdog_argv(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            close_fds=True,
            start_new_session=True,
        )
        self.frozen_at = self.clock()
        for mount in self.mounts:
            try:
                rc, out, err = self.run([self.fsfreeze, "-f", mount])
            except BaseException:
                # a signal (or anything) while this mount was being frozen: it may be frozen already,
                # so it is thawed with the others (a thaw of a mount not frozen only fails)
                self.frozen.append(mount)
                self.thaw()
                raise
            if rc != 0:
                errors = self.thaw()
                raise FreezeError(
                    "fsfreeze -f %s failed (rc %d): %s%s"
                    % (
                        mount,
                        rc,
                        (err or out).strip(),
                        "; thawing also failed: " + "; ".join(errors) if errors else "",
                    )
                )
            self.frozen.append(mount)

    def elapsed(self):
        return None if self.frozen_at is None else self.clock() - self.frozen_at

    def thaw(self):
        """Thaw every frozen mount (last first), then stop the watchdog. Returns error strings; never raises."""
        errors = []
        while self.frozen:
            mount = self.frozen.pop()
            try:
                rc, out, err = self.run([self.fsfreeze, "-u", mount])
            except Exception as exc:  # a thaw must go on to the next mount
                errors.append("fsfreeze -u %s: %s" % (mount, exc))
                continue
            if rc != 0:
                errors.append("fsfreeze -u %s failed (rc %d): %s" % (mount, rc, (err or out).strip()))
        self._stop_watchdog()
        return errors

    def _stop_watchdog(self):
        proc = self.watchdog
        self.watchdog = None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)
        except Exception:  # noqa: S110 - never let the watchdog's end hide the real result
            pass


__all__ = ["WATCHDOG", "FreezeError", "Freezer", "validate_mounts"]
