# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's run: safe test files on each target, fio or dd in a child that dies with us, results.

User: storage_benchmark (the module file only declares the options). ``Benchmark`` is one run;
its parts live in files of their own:

* ``_benchmark_settings``: sizes, cross-field rules and targets (``SettingsError``);
* ``_benchmark_host``: a directory reached without symlinks, the mount and space of a target
  (``probe_target``, ``preflight``);
* ``_benchmark_proc``: fio or dd in a child that dies with us (``run_tool``, ``Interrupted``);
* ``_benchmark_target``: the test file on a target and the tests run on it (``TargetTests``);
* ``_benchmark_results``: saved runs and the comparison with the baseline.

``run_tool`` and ``probe_target`` are looked up here when a run starts, so a test can replace them
on this module.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os
import socket
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils import _benchmark_settings
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import (
    render_changes,
    render_metrics,
    render_table,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_host import (
    preflight_targets,
    probe_target,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_proc import (
    Interrupted,
    run_tool,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_results import (
    compare_with_baselines,
    history,
    pending_results,
    save,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark_target import TargetTests, run_under_lock
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy, TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._textfile import write_atomic
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_dir_from_root


class Benchmark:
    """One run of storage_benchmark: ``measure()`` or ``clean()`` returns the module's result.

    Raises ``SettingsError`` (a ``JtsError``) for options that do not make a benchmark.
    """

    def __init__(self, module, runner=None, probe=None):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.runner = runner or run_tool
        self.probe = probe or probe_target
        self.run_id = "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.urandom(3).hex())
        self.cleaned = []
        self.left_alone = []
        self.settings = _benchmark_settings.settings(self.params)
        self.targets = _benchmark_settings.targets(self.params)
        self.tests = TargetTests(module, self.settings, self.run_id, self.runner, self.cleaned, self.left_alone)

    def _tool(self):
        wanted = self.params["tool"]
        fio = self.module.get_bin_path("fio")
        if wanted == "fio" or (wanted == "auto" and fio):
            if not fio:
                if self.check:
                    self.module.warn("fio is not installed; a real run needs it (tool=fio)")
                    return "fio", "fio"
                fail(self.module, JtsError("fio is not installed (tool=fio; install the fio package or use tool=dd)"))
            return "fio", fio
        return "dd", self.module.get_bin_path("dd", required=True)

    # -- entry points
    def clean(self):
        for target in self.targets:
            try:
                lock = TreeLock([target["directory"]], "storage_benchmark clean-up", self.params["lock_dir"])
                if not self.check:
                    lock.acquire()
            except LockBusy:
                continue  # a live run holds it and removes its own file
            try:
                dir_fd = open_dir_from_root(target["directory"])
            except (OSError, UnsafePath):
                lock.release()
                continue
            try:
                self.tests.clean_leftovers(dir_fd, target["directory"])
            finally:
                os.close(dir_fd)
                lock.release()
        return dict(
            changed=bool(self.cleaned),
            run_id=self.run_id,
            cleaned=self.cleaned,
            left_alone=self.left_alone,
            msg="removed %d test file(s) of earlier runs" % len(self.cleaned),
        )

    def measure(self):
        tool, binary = self._tool()
        started = time.time()
        results, order = pending_results(self.targets, tool, self.settings)
        need = max(self.settings["seq_size"], self.settings["rand_size"])
        refused, runnable = preflight_targets(self.targets, self.probe, results, need, self.params["probe_timeout"])
        plan = run_under_lock(self.tests, runnable, tool, binary, results)
        ordered = [results[k] for k in order]
        ret = dict(
            run_id=self.run_id,
            tool=tool,
            results=ordered,
            table=render_table(ordered),
            plan=plan,
            refused=refused,
            cleaned=self.cleaned,
            left_alone=self.left_alone,
        )
        failed = [r for r in ordered if r["status"] == "failed"]
        if self.check:
            ret["changed"] = bool(plan) or bool(self.cleaned)
            ret["msg"] = "check mode: %d test(s) would run on %d target(s), %d refused; nothing was run" % (
                len(plan),
                len(runnable),
                len(refused),
            )
            return self._finish(ret, refused, failed)
        ok = [r for r in ordered if r["status"] == "ok"]
        threshold = self.params["change_threshold"]
        comparisons, worse = compare_with_baselines(
            history(self.params["state_dir"], self.check, self.module.warn), ok, threshold
        )
        run = {
            "version": 1,
            "run_id": self.run_id,
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "started_ts": started,
            "duration_seconds": round(time.time() - started, 3),
            "settings": self.settings,
            "results": ordered,
            "comparisons": comparisons,
        }
        ret.update(
            comparisons=comparisons, changes=render_changes(comparisons, threshold), worse=worse, result_file=None
        )
        if ok:
            ret["result_file"] = save(self.params["state_dir"], self.run_id, run)
        if self.params["textfile"] and ok:
            ret["textfile"] = self._textfile(run, comparisons)
        ret["changed"] = True
        ret["msg"] = "%d test(s) ok on %d target(s)%s%s; %d figure(s) worse than the baseline" % (
            len(ok),
            len(runnable),
            ", %d failed" % len(failed) if failed else "",
            ", %d target(s) refused" % len(refused) if refused else "",
            len(worse),
        )
        return self._finish(ret, refused, failed)

    def _textfile(self, run, comparisons):
        entry = {"path": self.params["textfile"], "written": False}
        try:
            write_atomic(self.params["textfile"], render_metrics(run, comparisons))
            entry["written"] = True
        except OSError as exc:
            entry["error"] = "cannot write %s: %s" % (self.params["textfile"], exc.strerror or exc)
            self.module.warn(entry["error"])
        return entry

    def _finish(self, ret, refused, failed):
        problems = refused + ["%s/%s %s: %s" % (r["tier"], r["name"], r["test"], r["reason"]) for r in failed]
        ret["problems"] = problems
        if problems:
            ret["msg"] = ret["msg"] + ": " + "; ".join(problems)
            fail(self.module, JtsError(ret.pop("msg")), **ret)
        return ret


# Interrupted, open_dir_from_root and TreeLock: also for tests/unit/plugins/modules/test_storage_benchmark.py,
# which replaces run_tool and probe_target on this module.
__all__ = [
    "Benchmark",
    "Interrupted",
    "TreeLock",
    "UnsafePath",
    "open_dir_from_root",
    "probe_target",
    "run_tool",
]
