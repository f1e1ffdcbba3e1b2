# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Calls that could block forever on a dead hard NFS mount, run with a time-out.

A ``stat`` or ``statvfs`` on a hard-mounted NFS path whose server vanished sleeps in the
kernel until the server returns. We run such calls in a forked child and wait on a pipe
with ``select``; if the child does not answer in time we send it SIGKILL (NFS waits are
killable) and never wait for it, so the caller returns within the time-out.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import time


class ProbeTimeout(RuntimeError):
    """The call did not return within the time-out: the path is probably on a stalled mount."""


def _child_run(func, args, write_fd):
    try:
        payload = {"ok": True, "value": func(*args)}
    except OSError as exc:
        payload = {"ok": False, "errno": exc.errno, "error": exc.strerror or str(exc)}
    except Exception as exc:
        payload = {"ok": False, "errno": None, "error": "%s: %s" % (type(exc).__name__, exc)}
    data = json.dumps(payload, default=str).encode()
    view = memoryview(data)
    while view:
        written = os.write(write_fd, view)
        view = view[written:]


def call_with_timeout(func, args=(), timeout=5.0):
    """Run ``func(*args)`` in a forked child; return its (JSON-serialisable) value.

    Raises ProbeTimeout after ``timeout`` seconds, OSError with the child's errno when the
    call failed with an OSError, RuntimeError for anything else.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            _child_run(func, args, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + timeout
    chunks = []
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProbeTimeout("no answer within %.1fs" % timeout)
            ready, _, _ = select.select([read_fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(read_fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    except ProbeTimeout:
        _abandon(pid)
        raise
    finally:
        os.close(read_fd)
    _reap(pid)
    if not chunks:
        raise RuntimeError("probe child died without an answer")
    payload = json.loads(b"".join(chunks).decode())
    if payload["ok"]:
        return payload["value"]
    if payload.get("errno") is not None:
        raise OSError(payload["errno"], payload["error"])
    raise RuntimeError(payload["error"])


def _abandon(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        return
    # Reap it if it died at once; otherwise leave it: waiting could block as long as the mount.
    for _ in range(10):
        try:
            done, _status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return
        if done:
            return
        time.sleep(0.01)


def _reap(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def statvfs_in_process(path):
    """``os.statvfs`` as the dict the time-limited variant returns; only for paths that cannot block."""
    st = os.statvfs(path)
    return {
        "f_bsize": st.f_bsize,
        "f_frsize": st.f_frsize,
        "f_blocks": st.f_blocks,
        "f_bfree": st.f_bfree,
        "f_bavail": st.f_bavail,
        "f_files": st.f_files,
        "f_ffree": st.f_ffree,
        "f_favail": st.f_favail,
    }


def _stat(path):
    st = os.stat(path)
    return {"st_mode": st.st_mode, "st_dev": st.st_dev, "st_ino": st.st_ino, "st_size": st.st_size}


def statvfs_with_timeout(path, timeout=5.0):
    """``os.statvfs`` as a dict, or ProbeTimeout when the filesystem does not answer."""
    return call_with_timeout(statvfs_in_process, (path,), timeout)


def stat_with_timeout(path, timeout=5.0):
    """A few ``os.stat`` fields as a dict, or ProbeTimeout when the filesystem does not answer."""
    return call_with_timeout(_stat, (path,), timeout)


def _realpath(path):
    return os.fsdecode(os.path.realpath(path))


def realpath_with_timeout(path, timeout=5.0):
    """``os.path.realpath`` of ``path`` as bytes (it looks at every component, the mount point's own
    too), or ProbeTimeout when one of them does not answer."""
    return os.fsencode(call_with_timeout(_realpath, (path,), timeout))


def tcp_probe(host, port, timeout=3.0):
    """Return (True, "") when a TCP connection to host:port opens in time, else (False, reason)."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return True, ""
    except socket.timeout:
        return False, "no answer from %s:%s within %.1fs" % (host, port, timeout)
    except OSError as exc:
        return False, "%s:%s: %s" % (host, port, exc.strerror or exc)
