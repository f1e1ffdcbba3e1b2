# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's run: safe test files on each target, fio or dd in a child that dies with us, results.

The module file only declares the options; everything it does on the host lives here.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import (
    TESTS,
    BenchmarkError,
    compare,
    dd_argv,
    find_baselines,
    fio_argv,
    is_test_file,
    job_size,
    parse_dd,
    parse_fio,
    render_changes,
    render_metrics,
    render_table,
    result_key,
    shown_argv,
    signature,
    space_refusal,
    test_file_name,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_sinks import write_atomic
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy, TreeLock
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout, call_with_timeout
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, open_private_dir
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_size

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """A stop signal arrived; the run cleans up and fails."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


# ----------------------------------------------------------------------------------------------
# Host side: directories without symlinks, mount points, tools
# ----------------------------------------------------------------------------------------------


def open_dir_nofollow(path):
    """Open directory ``path`` one component at a time from ``/`` with O_NOFOLLOW."""
    if not path.startswith("/"):
        raise UnsafePath("%s is not an absolute path" % path)
    fd = os.open("/", DIR_FLAGS)
    try:
        for name in [p for p in path.split("/") if p and p != "."]:
            if name == "..":
                raise UnsafePath("%s contains '..'" % path)
            try:
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise UnsafePath("%s: %s is a symlink or not a directory; not followed" % (path, name)) from exc
                raise
            os.close(fd)
            fd = child
        return fd
    except BaseException:
        os.close(fd)
        raise


def _unescape_mountinfo(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mount_entry(path, mountinfo="/proc/self/mountinfo"):
    """``(path is a mount point, fstype of the mount that holds it)``; the last of stacked mounts wins."""
    is_mount, fstype, longest = False, None, -1
    with open(mountinfo) as handle:
        for line in handle:
            left, _sep, right = line.partition(" - ")
            fields = left.split()
            if len(fields) < 5 or not right.split():
                continue
            point = _unescape_mountinfo(fields[4])
            if point == path:
                is_mount, fstype = True, right.split()[0]
            elif not is_mount and (point == "/" or path.startswith(point.rstrip("/") + "/")) and len(point) >= longest:
                fstype, longest = right.split()[0], len(point)
    return is_mount, fstype


def probe_target(mount, directory):
    """Run in a forked child (time-limited): mount point, fstype, the directory on the mount, statvfs."""
    mount_fd = open_dir_nofollow(mount)
    try:
        dir_fd = open_dir_nofollow(directory)
        try:
            same = os.fstat(mount_fd).st_dev == os.fstat(dir_fd).st_dev
            vfs = os.fstatvfs(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        os.close(mount_fd)
    is_mount, fstype = mount_entry(mount)
    return {
        "is_mount": is_mount,
        "fstype": fstype,
        "same_device": same,
        "vfs": {k: getattr(vfs, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail")},
    }


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


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


class Benchmark:
    def __init__(self, module, runner=None, probe=None):
        self.module = module
        self.params = module.params
        self.check = module.check_mode
        self.runner = runner or run_tool
        self.probe = probe or probe_target
        self.run_id = "%s-%s" % (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.urandom(3).hex())
        self.cleaned = []
        self.left_alone = []
        self.settings = self._settings()
        self.targets = self._targets()

    # -- settings
    def _settings(self):
        p = self.params
        try:
            settings = {
                "seq_size": parse_size(p["seq_size"], "seq_size"),
                "seq_block_size": parse_size(p["seq_block_size"], "seq_block_size"),
                "rand_size": parse_size(p["rand_size"], "rand_size"),
                "rand_block_size": parse_size(p["rand_block_size"], "rand_block_size"),
            }
        except UnitError as exc:
            self.module.fail_json(msg=str(exc))
        for name in ("seq_block_size", "rand_block_size"):
            if settings[name] < 512 or settings[name] % 512:
                self.module.fail_json(msg="%s must be a multiple of 512 bytes (direct I/O)" % name)
        for size, block in (("seq_size", "seq_block_size"), ("rand_size", "rand_block_size")):
            if settings[size] < settings[block]:
                self.module.fail_json(msg="%s must be at least %s" % (size, block))
        for name in ("iodepth", "runtime", "timeout", "probe_timeout"):
            if p[name] < 1:
                self.module.fail_json(msg="%s must be at least 1" % name)
        if not 0 < p["warning"] <= 100:
            self.module.fail_json(msg="warning must lie in 0..100 (got %s)" % p["warning"])
        if p["textfile"] and not (p["textfile"].startswith("/") and p["textfile"].endswith(".prom")):
            self.module.fail_json(msg="textfile %s must be an absolute path ending in .prom" % p["textfile"])
        settings.update(iodepth=p["iodepth"], runtime=p["runtime"])
        return settings

    def _targets(self):
        targets = []
        for t in self.params["targets"]:
            t = dict(t)
            t["mount"] = os.path.normpath(t["mount"])
            t["directory"] = os.path.normpath(t["directory"] or t["mount"])
            if t["directory"] != t["mount"] and not t["directory"].startswith(t["mount"].rstrip("/") + "/"):
                self.module.fail_json(
                    msg="target %s/%s: directory %s is not below mount %s"
                    % (t["tier"], t["name"], t["directory"], t["mount"])
                )
            tests = set(t["tests"])
            if tests & {"rand_read", "seq_read"}:
                tests.add("seq_write")  # a read reads what the write wrote: never holes
            t["tests"] = [name for name in TESTS if name in tests]
            if t["warning"] is None:
                t["warning"] = self.params["warning"]
            targets.append(t)
        keys = [(t["tier"], t["name"]) for t in targets]
        if len(set(keys)) != len(keys):
            self.module.fail_json(msg="targets: each tier/name must appear once (got %s)" % keys)
        return targets

    def _tool(self):
        wanted = self.params["tool"]
        fio = self.module.get_bin_path("fio")
        if wanted == "fio" or (wanted == "auto" and fio):
            if not fio:
                if self.check:
                    self.module.warn("fio is not installed; a real run needs it (tool=fio)")
                    return "fio", "fio"
                self.module.fail_json(msg="fio is not installed (tool=fio; install the fio package or use tool=dd)")
            return "fio", fio
        return "dd", self.module.get_bin_path("dd", required=True)

    # -- leftovers
    def _clean_leftovers(self, dir_fd, directory, keep=None):
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

    # -- state
    def _history(self):
        """The saved runs, oldest first; unreadable files are reported and skipped."""
        state_dir = self.params["state_dir"]
        try:
            fd = open_private_dir(state_dir, create=not self.check)
        except FileNotFoundError:
            return []
        except UnsafePath as exc:
            self.module.fail_json(msg="state_dir %s refused: %s" % (state_dir, exc))
        runs = []
        try:
            for name in sorted(os.listdir(fd)):
                if name.startswith(".") or not name.endswith(".json"):
                    continue
                try:
                    file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                    with os.fdopen(file_fd, "rb") as handle:
                        run = json.loads(handle.read(16 << 20).decode("utf-8"))
                    run["started_ts"] = float(run["started_ts"])
                    runs.append(run)
                except (OSError, ValueError, KeyError, TypeError) as exc:
                    self.module.warn("%s/%s is not a benchmark result (%s); ignored" % (state_dir, name, exc))
        finally:
            os.close(fd)
        runs.sort(key=lambda r: (r["started_ts"], str(r.get("run_id"))))
        return runs

    def _save(self, run):
        fd = open_private_dir(self.params["state_dir"])
        try:
            name = "%s.json" % self.run_id
            tmp = ".%s.json.tmp" % self.run_id
            file_fd = os.open(
                tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=fd
            )
            try:
                with os.fdopen(file_fd, "wb") as handle:
                    handle.write(json.dumps(run, indent=1, sort_keys=True).encode("utf-8"))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
            except BaseException:
                try:
                    os.unlink(tmp, dir_fd=fd)
                except OSError:
                    pass
                raise
            os.fsync(fd)
            return os.path.join(self.params["state_dir"], name)
        finally:
            os.close(fd)

    # -- one target
    def _preflight(self, target, need):
        """A refusal message, or None; records fstype on the target."""
        where = "%s (%s tier, %s)" % (target["mount"], target["tier"], target["name"])
        try:
            found = call_with_timeout(self.probe, (target["mount"], target["directory"]), self.params["probe_timeout"])
        except ProbeTimeout:
            return "%s did not answer within %ss (a dead NFS server?): not benchmarked" % (
                where,
                self.params["probe_timeout"],
            )
        except OSError as exc:
            return "%s: %s (%s): not benchmarked" % (where, exc.strerror or exc, target["directory"])
        except RuntimeError as exc:  # UnsafePath from the child
            return "%s: %s: not benchmarked" % (where, exc)
        target["fstype"] = found["fstype"]
        if target["require_mount"] and not found["is_mount"]:
            return "%s is not a mount point (the tier is not mounted?): not benchmarked, nothing written" % where
        if not found["same_device"]:
            return "%s: %s is on another filesystem than the mount: not benchmarked" % (where, target["directory"])
        return space_refusal(target, found["vfs"], need, target["warning"])

    def _commands(self, tool, binary, test, fd, written):
        size = job_size(test, self.settings, written)
        if tool == "fio":
            return fio_argv(binary, test, fd, self.settings, size), size
        return dd_argv(binary, test, fd, self.settings, size), size

    def _measure(self, target, tool, binary, results, plan):
        dir_fd = open_dir_nofollow(target["directory"])
        name = test_file_name(self.run_id)
        path = os.path.join(target["directory"], name)
        fd = None
        try:
            self._clean_leftovers(dir_fd, target["directory"])
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
                dir_fd = open_dir_nofollow(target["directory"])
            except (OSError, UnsafePath):
                lock.release()
                continue
            try:
                self._clean_leftovers(dir_fd, target["directory"])
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
        results = {}
        order = []
        for t in self.targets:
            for test in t["tests"]:
                key = (t["tier"], t["name"], test)
                order.append(key)
                results[key] = {
                    "tier": t["tier"],
                    "name": t["name"],
                    "mount": t["mount"],
                    "directory": t["directory"],
                    "fstype": None,
                    "test": test,
                    "tool": tool,
                    "status": "pending",
                    "reason": "",
                    "signature": signature(test, tool, self.settings),
                    "figures": {},
                }
        need = max(self.settings["seq_size"], self.settings["rand_size"])
        refused = []
        runnable = []
        for t in self.targets:
            reason = self._preflight(t, need)
            for test in t["tests"]:
                results[(t["tier"], t["name"], test)]["fstype"] = t.get("fstype")
            if reason:
                refused.append(reason)
                for test in t["tests"]:
                    results[(t["tier"], t["name"], test)].update(status="refused", reason=reason)
            else:
                runnable.append(t)
        plan = []
        lock = TreeLock([t["directory"] for t in runnable], "storage_benchmark", self.params["lock_dir"])
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}

        def _stop(signum, _frame):
            for s in STOP_SIGNALS:
                signal.signal(s, signal.SIG_IGN)  # the clean-up runs to its end
            raise Interrupted(signum)

        try:
            if not self.check and runnable:
                lock.acquire()
            for s in STOP_SIGNALS:
                signal.signal(s, _stop)
            for t in runnable:
                self._measure(t, tool, binary, results, plan)
        except Interrupted as exc:
            lock.release()
            self.module.fail_json(
                msg="interrupted by signal %d; the test files were removed, nothing was saved" % exc.signum,
                cleaned=self.cleaned,
                run_id=self.run_id,
            )
        except LockBusy as exc:
            self.module.fail_json(msg=str(exc), run_id=self.run_id)
        except (OSError, UnsafePath) as exc:
            lock.release()
            self.module.fail_json(msg="storage_benchmark: %s" % exc, run_id=self.run_id, cleaned=self.cleaned)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
        lock.release()
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
        history = self._history()
        baselines = find_baselines(history, ok)
        comparisons = {}
        worse = []
        threshold = self.params["change_threshold"]
        for r in ok:
            key = result_key(r)
            if key in baselines:
                run, old = baselines[key]
                changes = compare(r, old, threshold)
                comparisons[key] = {"baseline_run": run.get("run_id"), "changes": changes}
                for c in changes:
                    if c["verdict"] == "worse":
                        worse.append(
                            "%s %s %+.1f %% (%s is better)"
                            % (key, c["label"], c["change_percent"], "higher" if c["higher_is_better"] else "lower")
                        )
            else:
                comparisons[key] = {"baseline_run": None, "changes": []}
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
            ret["result_file"] = self._save(run)
        if self.params["textfile"] and ok:
            entry = {"path": self.params["textfile"], "written": False}
            try:
                write_atomic(self.params["textfile"], render_metrics(run, comparisons))
                entry["written"] = True
            except OSError as exc:
                entry["error"] = "cannot write %s: %s" % (self.params["textfile"], exc.strerror or exc)
                self.module.warn(entry["error"])
            ret["textfile"] = entry
        ret["changed"] = True
        ret["msg"] = "%d test(s) ok on %d target(s)%s%s; %d figure(s) worse than the baseline" % (
            len(ok),
            len(runnable),
            ", %d failed" % len(failed) if failed else "",
            ", %d target(s) refused" % len(refused) if refused else "",
            len(worse),
        )
        return self._finish(ret, refused, failed)

    def _finish(self, ret, refused, failed):
        problems = refused + ["%s/%s %s: %s" % (r["tier"], r["name"], r["test"], r["reason"]) for r in failed]
        ret["problems"] = problems
        if problems:
            ret["msg"] = ret["msg"] + ": " + "; ".join(problems)
            self.module.fail_json(**ret)
        return ret
