# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A ClickHouse HTTP interface client with a hard deadline on every request.

Standard library only, Python 3.8: ``urllib.parse`` for the address and parameters,
``http.client`` for the request because it lets the client give the socket what is left of the
request's deadline before every read, so one request never takes longer than its time-out in
total (``urllib.request.urlopen``'s time-out applies to each socket operation, and a server that
trickles bytes could hold it much longer). Redirects are never followed.

The user goes in ``X-ClickHouse-User`` and the password in ``X-ClickHouse-Key``: never in the URL,
which servers and proxies log. No message this module raises contains the password.

Each request carries its own ``query_id`` and ``max_execution_time``. When a request gets no
answer in time, the client asks the server, in a second short request, to ``KILL QUERY ... ASYNC``
that query id, and raises ``ClickHouseTimeout``; a query stuck in the kernel on a dead NFS mount
cannot be killed (ClickHouse issue 65552), but the caller has its answer within the time-out.
"""

from __future__ import annotations

import http.client
import json
import math
import re
import socket
import ssl
import time
import uuid
from urllib.parse import urlencode, urlsplit

from ansible_collections.jts.tiered_storage.plugins.module_utils._clickhouse_sql import kill_query
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

_CODE = re.compile(r"Code:\s*(\d+)")
KILL_TIMEOUT = 2.0
MAX_ANSWER = 64 << 20


class ClickHouseError(JtsError):
    """The server refused a query or could not be reached; ``code`` is ClickHouse's error code."""

    def __init__(self, message, code=None, sql=None):
        super().__init__(message)
        self.code = code
        self.sql = sql


class ClickHouseTimeout(ClickHouseError):
    """No complete answer within the time-out (the query was asked to stop: ``killed``)."""

    def __init__(self, message, sql=None, killed=False):
        super().__init__(message, sql=sql)
        self.killed = killed


def short(sql, limit=160):
    sql = " ".join(sql.split())
    return sql if len(sql) <= limit else sql[: limit - 3] + "..."


def parse_url(url):
    """``(scheme, host, port, path)`` of the server's HTTP interface; refuses credentials in the URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ClickHouseError("url %r: the scheme must be http or https" % (url,))
    if parts.username is not None or parts.password is not None:
        raise ClickHouseError("url: give the user and password in user and password, never in the URL")
    if parts.query or parts.fragment:
        raise ClickHouseError("url %r: no query string or fragment" % (url,))
    if not parts.hostname:
        raise ClickHouseError("url %r: no host" % (url,))
    try:
        port = parts.port or (8443 if parts.scheme == "https" else 8123)
    except ValueError as exc:
        raise ClickHouseError("url %r: %s" % (url, exc)) from None
    return parts.scheme, parts.hostname, port, parts.path or "/"


class ClickHouseHTTP:
    """``select(sql, timeout)`` -> rows as dicts; ``execute(sql, timeout)`` for statements."""

    def __init__(self, url, user="default", password=None, validate_certs=True, connection_factory=None):
        self.scheme, self.host, self.port, self.path = parse_url(url)
        self.user = user
        self._password = password or ""
        self._validate_certs = validate_certs
        self._factory = connection_factory or self._connection
        self.issued = []  # (query_id, sql) of every request, in order

    def _connection(self, timeout):
        if self.scheme == "https":
            context = ssl.create_default_context()
            if not self._validate_certs:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _scrub(self, text):
        if self._password:
            text = text.replace(self._password, "********")
        return text

    def _headers(self):
        headers = {"X-ClickHouse-User": self.user, "Content-Type": "text/plain; charset=utf-8"}
        if self._password:
            headers["X-ClickHouse-Key"] = self._password
        return headers

    def request(self, sql, timeout, fmt=None, kill_on_timeout=True):
        """The answer's body (text) to ``sql``, within ``timeout`` seconds in total."""
        query_id = "jts-tiering-" + uuid.uuid4().hex
        params = {
            "query_id": query_id,
            "max_execution_time": max(1, math.ceil(timeout)),
            "wait_end_of_query": 1,
        }
        if fmt:
            params["default_format"] = fmt
        self.issued.append((query_id, sql))
        try:
            status, code, body = self._exchange(sql, params, timeout)
        except socket.timeout:
            killed = self._kill(query_id) if kill_on_timeout else False
            raise ClickHouseTimeout(
                "no answer within %gs from %s:%d to: %s" % (timeout, self.host, self.port, short(sql)),
                sql=sql,
                killed=killed,
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise ClickHouseError(
                "cannot talk to ClickHouse at %s://%s:%d: %s"
                % (self.scheme, self.host, self.port, self._scrub(str(exc))),
                sql=sql,
            ) from None
        text = self._scrub(body.decode("utf-8", "replace"))
        if status != 200:
            match = _CODE.search(text)
            code = code or (int(match.group(1)) if match else None)
            first = text.strip().splitlines()[0] if text.strip() else "HTTP %d" % status
            raise ClickHouseError("ClickHouse refused (HTTP %d): %s [%s]" % (status, first, short(sql)), code, sql)
        return text

    def _exchange(self, sql, params, timeout):
        deadline = time.monotonic() + timeout

        def remaining():
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline")
            return left

        conn = self._factory(remaining())
        try:
            conn.connect()
            # kept: http.client drops conn.sock when the server closes after its answer
            sock = conn.sock
            sock.settimeout(remaining())
            conn.request("POST", self.path + "?" + urlencode(params), body=sql.encode("utf-8"), headers=self._headers())
            sock.settimeout(remaining())
            response = conn.getresponse()
            code = response.getheader("X-ClickHouse-Exception-Code")
            # read1: at most one socket read per call, each within what is left of the deadline
            read = getattr(response, "read1", response.read)
            chunks, size = [], 0
            while True:
                sock.settimeout(remaining())
                chunk = read(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_ANSWER:
                    raise ClickHouseError("answer larger than %d bytes" % MAX_ANSWER)
                chunks.append(chunk)
            remaining()
            return response.status, int(code) if code and code.isdigit() else None, b"".join(chunks)
        finally:
            conn.close()

    def _kill(self, query_id):
        """Ask the server to stop ``query_id``; True when it answered."""
        try:
            self.request(kill_query(query_id), KILL_TIMEOUT, kill_on_timeout=False)
        except ClickHouseError:
            return False
        return True

    def select(self, sql, timeout):
        text = self.request(sql, timeout, fmt="JSON")
        try:
            return json.loads(text)["data"]
        except (ValueError, KeyError, TypeError):
            raise ClickHouseError("not a JSON answer to: %s (%r)" % (short(sql), text[:200]), sql=sql) from None

    def execute(self, sql, timeout):
        self.request(sql, timeout)
