# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark on one target: its test file made safely, the tests run on it, the file removed.

User: ``_benchmark_run.Benchmark`` (``state: measured`` and ``state: cleaned``); ``run_under_lock``
runs the targets' tests under the run lock (``_lock.TreeLock``, shared with tier_migrate), with
SIGTERM, SIGINT and SIGHUP turned into a clean failure.

The test file is ``<directory>/.jts-benchmark-<run id>.tmp``, created ``O_EXCL``/``O_NOFOLLOW`` in
a directory reached from ``/`` without following symlinks, sized before fio sees it, and handed
to the tool as an open descriptor. It is emptied by its descriptor and unlinked (only if the name
is still this file) after the target's tests, with stop signals held off; test files that killed
runs left (root's regular files of that name pattern) are removed first.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import signal
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import (
    TESTS,
    BenchmarkError,
    dd_argv,
    fio_argv,
    is_test_file,
    job_size,
    parse_dd,
    parse_fio,
    shown_argv,
    test_file_name,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_proc import STOP_SIGNALS, Interrupted
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy, TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_dir_from_root


class TargetTests:
    """The tests of one run on its targets; removed and left-alone files go to ``cleaned``/``left_alone``."""

    def __init__(self, module, settings, run_id, runner, cleaned, left_alone):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.settings = settings
        self.run_id = run_id
        self.runner = runner
        self.cleaned = cleaned
        self.left_alone = left_alone

    def clean_leftovers(self, dir_fd, directory, keep=None):
        for name in sorted(os.listdir(dir_fd)):
            if name == keep or not is_test_file(name):
                continue
            path = os.path.join(directory, name)
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
                self.left_alone.append(path)
                continue
            if not self.check:
                os.unlink(name, dir_fd=dir_fd)
            self.cleaned.append(path)

    def _commands(self, tool, binary, test, fd, written):
        size = job_size(test, self.settings, written)
        if tool == "fio":
            return fio_argv(binary, test, fd, self.settings, size), size
        return dd_argv(binary, test, fd, self.settings, size), size

    def measure(self, target, tool, binary, results, plan):
        dir_fd = open_dir_from_root(target["directory"])
        name = test_file_name(self.run_id)
        path = os.path.join(target["directory"], name)
        fd = None
        try:
            self.clean_leftovers(dir_fd, target["directory"])
            if self.check:
                written = None
                fd = 99  # shown as the path, never opened
            else:
                # No stop signal between the file's creation and ``fd`` holding it (the finally needs it).
                mask = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
                try:
                    fd = os.open(
                        name, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd
                    )
                finally:
                    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                # fio must not extend (it would unlink and re-create the file by name): size it first.
                os.ftruncate(fd, max(self.settings["seq_size"], self.settings["rand_size"]))
                written = None
            for test in target["tests"]:
                result = results[(target["tier"], target["name"], test)]
                argv, size = self._commands(tool, binary, test, fd, written)
                if argv is None:
                    result.update(status="skipped", reason="dd cannot do random reads; install fio")
                    continue
                result["command"] = shown_argv(argv, fd, path)
                plan.append(
                    {"target": "%s/%s" % (target["tier"], target["name"]), "test": test, "command": result["command"]}
                )
                if self.check:
                    result["status"] = "planned"
                    continue
                if size <= 0:
                    result.update(status="skipped", reason="the write wrote nothing to read")
                    continue
                self._run_one(result, argv, fd, tool)
                if test == "seq_write":
                    written = result["figures"]["bytes"] if result["status"] == "ok" else 0
        finally:
            if fd is not None and not self.check:
                self._remove_test_file(dir_fd, name, fd, path)
            os.close(dir_fd)

    def _run_one(self, result, argv, fd, tool):
        direction = TESTS[result["test"]][0]
        rc, out, err, timed_out = self.runner(argv, fd, self.params["timeout"])
        if timed_out:
            result.update(status="failed", reason="killed after timeout=%ss" % self.params["timeout"])
            return
        if rc != 0:
            result.update(status="failed", reason="%s exited %s: %s" % (tool, rc, (err or out).strip()[-500:]))
            return
        try:
            if tool == "fio":
                result["figures"] = parse_fio(out, direction)
            else:
                result["figures"] = parse_dd(err, self.settings["seq_block_size"])
        except BenchmarkError as exc:
            result.update(status="failed", reason=str(exc))
            return
        result["status"] = "ok"

    def _remove_test_file(self, dir_fd, name, fd, path):
        """Empty the file by its descriptor (so its space is freed wherever its name went), then unlink
        the name if it is still this file."""
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            os.ftruncate(fd, 0)
            ours = os.fstat(fd)
            try:
                st = os.lstat(name, dir_fd=dir_fd)
                if (st.st_dev, st.st_ino) == (ours.st_dev, ours.st_ino):
                    os.unlink(name, dir_fd=dir_fd)
                else:
                    self.module.warn("%s was replaced during the test; the other file was left alone" % path)
            except FileNotFoundError:
                self.module.warn("%s was renamed or removed during the test (emptied by its descriptor)" % path)
        finally:
            os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def run_under_lock(tests, runnable, tool, binary, results):
    """The tests on ``runnable`` under the run lock, stop signals turned into a clean failure; the plan.

    ``tests`` is the run's ``TargetTests``; a failure here fails the task (``_errors.fail``).
    """
    plan = []
    lock = TreeLock([t["directory"] for t in runnable], "storage_benchmark", tests.params["lock_dir"])
    previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

    def _stop(signum, _frame):
        for s in STOP_SIGNALS:
            signal.signal(s, signal.SIG_IGN)  # the clean-up runs to its end
        raise Interrupted(signum)

    try:
        if not tests.check and runnable:
            lock.acquire()
        for s in STOP_SIGNALS:
            signal.signal(s, _stop)
        for t in runnable:
            tests.measure(t, tool, binary, results, plan)
    except Interrupted as exc:
        lock.release()
        fail(
            tests.module,
            JtsError("interrupted by signal %d; the test files were removed, nothing was saved" % exc.signum),
            cleaned=tests.cleaned,
            run_id=tests.run_id,
        )
    except LockBusy as exc:
        fail(tests.module, exc, run_id=tests.run_id)
    except (OSError, UnsafePath) as exc:
        lock.release()
        fail(tests.module, JtsError("storage_benchmark: %s" % exc), run_id=tests.run_id, cleaned=tests.cleaned)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    lock.release()
    return plan


__all__ = ["TargetTests", "run_under_lock"]
