"""A stand-in for the ClickHouse server's HTTP interface, for the tests: queries run in chdb.

Debian 12's clickhouse-server (18.16) is older than storage policies and no newer server can be
installed here, so the tests run ClickHouse's own engine in-process with chdb (PyPI), which
reads a configuration file with a ``storage_configuration`` (``chdb.connect("file:DIR?config-file=CFG")``).
This script puts a small HTTP front before it that speaks the part of the server's HTTP interface
the clickhouse_tiering module uses:

- ``POST /?query_id=...&default_format=JSON&...`` with the statement as the body (or ``?query=``);
  the answer is the statement's output in ``default_format`` (TabSeparated when none is given).
- ``X-ClickHouse-User`` / ``X-ClickHouse-Key``: with ``--password`` the front refuses others with
  HTTP 403 and ``Code: 516 ... (AUTHENTICATION_FAILED)``, as the server does.
- Errors: HTTP 500 with the engine's ``Code: N. DB::Exception: ...`` text and the
  ``X-ClickHouse-Exception-Code`` header. Settings given as URL parameters (``max_execution_time``,
  ``wait_end_of_query``) are accepted and not applied; the engine's own query ids are its own.

One statement runs at a time (one chdb connection). Every request is appended to ``--log``
(JSON lines: user, whether a key was sent, the parameters, the statement; never the key itself).

Run it as ``python clickhouse_http_front.py --data DIR --config CFG --port-file FILE``; it writes
its port to FILE once it listens. With ``--stall PATH`` (root, and run under
``unshare --mount --propagation private`` so nothing else on the machine sees it), SIGUSR1 mounts
over PATH a FUSE filesystem that never answers (a ``/dev/fuse`` connection nobody serves): every
access to PATH then blocks in the kernel, as on a hard NFS mount whose server went away. The front
writes ``FILE.stalled`` once the mount is there. SIGUSR2 aborts the connection (accesses then fail
with ENOTCONN); exiting ends it too.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import signal
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import chdb

_CODE = re.compile(r"Code:\s*(\d+)")


class Front:
    def __init__(self, args):
        self.args = args
        self.conn = chdb.connect("file:%s?config-file=%s" % (args.data, args.config))
        self.lock = threading.Lock()
        self.log_lock = threading.Lock()
        self.fuse_fd = None

    def log(self, entry):
        if self.args.log:
            with self.log_lock, open(self.args.log, "a") as handle:
                handle.write(json.dumps(entry) + "\n")

    def run(self, sql, fmt):
        with self.lock:
            return self.conn.query(sql, fmt).bytes()

    def stall(self, *_):
        """Mount a FUSE filesystem that never answers over --stall (SIGUSR1)."""
        target = self.args.stall
        fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
        libc = ctypes.CDLL(None, use_errno=True)
        options = ("fd=%d,rootmode=40000,user_id=0,group_id=0" % fd).encode()
        if libc.mount(b"jts-stall", target.encode(), b"fuse", 0, options) != 0:
            error = ctypes.get_errno()
            os.close(fd)
            raise OSError(error, "mount fuse on %s: %s" % (target, os.strerror(error)))
        self.fuse_fd = fd
        with open(self.args.port_file + ".stalled", "w") as handle:
            handle.write(target)

    def unstall(self, *_):
        if self.fuse_fd is not None:
            os.close(self.fuse_fd)
            self.fuse_fd = None


def handler_for(front):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _answer(self, status, body, code=None):
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            if code is not None:
                self.send_header("X-ClickHouse-Exception-Code", str(code))
            self.end_headers()
            self.wfile.write(body)

        def _handle(self, body):
            params = {k: v[-1] for k, v in parse_qs(urlsplit(self.path).query).items()}
            sql = body.decode("utf-8") if body else params.get("query", "")
            user = self.headers.get("X-ClickHouse-User", "default")
            key = self.headers.get("X-ClickHouse-Key")
            front.log(
                {
                    "user": user,
                    "key_sent": key is not None,
                    "params": {k: v for k, v in params.items() if k != "query"},
                    "sql": sql,
                }
            )
            if front.args.password is not None and (user != front.args.user or key != front.args.password):
                message = (
                    "Code: 516. DB::Exception: %s: Authentication failed: password is incorrect, or there is no "
                    "user with such name. (AUTHENTICATION_FAILED)\n" % user
                )
                return self._answer(403, message.encode(), 516)
            try:
                output = front.run(sql, params.get("default_format", "TabSeparated"))
            except Exception as exc:
                text = str(exc)
                match = _CODE.search(text)
                return self._answer(500, (text + "\n").encode(), int(match.group(1)) if match else 1001)
            return self._answer(200, output)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self._handle(self.rfile.read(length))

        def do_GET(self):
            self._handle(b"")

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password")
    parser.add_argument("--log")
    parser.add_argument("--stall")
    args = parser.parse_args()
    front = Front(args)
    if args.stall:
        signal.signal(signal.SIGUSR1, front.stall)
        signal.signal(signal.SIGUSR2, front.unstall)
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(front))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
