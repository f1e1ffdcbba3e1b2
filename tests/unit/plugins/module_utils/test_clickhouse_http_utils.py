"""The ClickHouse HTTP client (_clickhouse_http) against scripted HTTP servers on 127.0.0.1.

Each server is a socket in a thread that answers as scripted: a ClickHouse answer, an error, no
answer at all, or an answer that trickles in a byte at a time (a deadline per socket read would
never fire on it; the client's deadline is for the whole request).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _clickhouse_http as h

PASSWORD = "s3cr3t-pass"  # noqa: S105 (a test value)


class Scripted:
    """A one-thread HTTP server: ``behave(request) -> (status, headers, body, mode)``; records requests."""

    def __init__(self, behave):
        self.behave = behave
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _read(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        length = int(headers.get("Content-Length", 0))
        while len(body) < length:
            body += conn.recv(65536)
        target = lines[0].split(" ")[1]
        return {
            "target": target,
            "params": {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()},
            "headers": headers,
            "body": body.decode(),
        }

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn):
        with conn:
            request = self._read(conn)
            if request is None:
                return
            self.requests.append(request)
            status, headers, body, mode = self.behave(request)
            if mode == "hang":
                self.stop.wait(30)
                return
            head = "HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n" % (status, len(body))
            head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
            if mode == "trickle":
                conn.sendall(head.encode())
                for byte in body:
                    if self.stop.wait(0.3):
                        return
                    conn.sendall(bytes([byte]))
                return
            conn.sendall(head.encode() + body)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def scripted():
    servers = []

    def make(behave):
        server = Scripted(behave)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def json_answer(rows):
    return json.dumps({"meta": [], "data": rows, "rows": len(rows)}).encode()


def test_select_sends_the_statement_credentials_in_headers_and_settings(scripted):
    server = scripted(lambda r: (200, {}, json_answer([{"version": "24.8"}]), None))
    client = h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port, "tiering", PASSWORD)
    assert client.select("SELECT version() AS version", 5) == [{"version": "24.8"}]
    request = server.requests[0]
    assert request["body"] == "SELECT version() AS version"
    assert request["headers"]["X-ClickHouse-User"] == "tiering"
    assert request["headers"]["X-ClickHouse-Key"] == PASSWORD
    assert PASSWORD not in request["target"]
    assert request["params"]["default_format"] == "JSON"
    assert request["params"]["max_execution_time"] == "5"
    assert request["params"]["wait_end_of_query"] == "1"
    assert request["params"]["query_id"].startswith("jts-tiering-")
    assert client.issued == [(request["params"]["query_id"], "SELECT version() AS version")]


def test_no_password_no_key_header(scripted):
    server = scripted(lambda r: (200, {}, b"", None))
    h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port).execute("SYSTEM FLUSH LOGS", 5)
    assert "X-ClickHouse-Key" not in server.requests[0]["headers"]
    assert server.requests[0]["headers"]["X-ClickHouse-User"] == "default"


def test_server_errors_carry_the_code_and_never_the_password(scripted):
    body = (
        "Code: 516. DB::Exception: tiering: Authentication failed (key %s). (AUTHENTICATION_FAILED)\n" % PASSWORD
    ).encode()
    server = scripted(lambda r: (403, {"X-ClickHouse-Exception-Code": "516"}, body, None))
    client = h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port, "tiering", PASSWORD)
    with pytest.raises(h.ClickHouseError) as caught:
        client.select("SELECT 1", 5)
    assert caught.value.code == 516
    assert "HTTP 403" in str(caught.value) and "AUTHENTICATION_FAILED" in str(caught.value)
    assert PASSWORD not in str(caught.value) and "********" in str(caught.value)


def test_error_code_from_the_body_without_the_header(scripted):
    server = scripted(lambda r: (500, {}, b"Code: 60. DB::Exception: Table m.x does not exist. (UNKNOWN_TABLE)", None))
    with pytest.raises(h.ClickHouseError) as caught:
        h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port).execute("ALTER TABLE m.x", 5)
    assert caught.value.code == 60 and caught.value.sql == "ALTER TABLE m.x"


def test_a_server_that_does_not_answer_times_out_and_is_asked_to_kill(scripted):
    server = scripted(lambda r: (200, {}, b"", "hang" if "KILL" not in r["body"] else None))
    client = h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port)
    started = time.monotonic()
    with pytest.raises(h.ClickHouseTimeout) as caught:
        client.execute("ALTER TABLE m.t MOVE PARTITION ID '1' TO VOLUME 'cold'", 1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 1.0 + 0.5
    assert caught.value.killed is True
    assert "no answer within 1s" in str(caught.value)
    query_id = server.requests[0]["params"]["query_id"]
    assert server.requests[1]["body"] == "KILL QUERY WHERE query_id = '%s' ASYNC" % query_id


def test_the_deadline_is_for_the_whole_answer_not_each_read(scripted):
    # 40 bytes at 0.3 s each: every read answers well within 1 s, the whole answer takes 12 s
    server = scripted(lambda r: (200, {}, b"x" * 40, "trickle" if "KILL" not in r["body"] else None))
    client = h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port)
    started = time.monotonic()
    with pytest.raises(h.ClickHouseTimeout):
        client.request("SELECT 1", 1.0)
    assert time.monotonic() - started < 1.0 + 0.5


def test_kill_that_gets_no_answer_either_is_bounded(scripted):
    server = scripted(lambda r: (200, {}, b"", "hang"))
    client = h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port)
    started = time.monotonic()
    with pytest.raises(h.ClickHouseTimeout) as caught:
        client.execute("SELECT 1", 0.5)
    assert caught.value.killed is False
    assert time.monotonic() - started < 0.5 + h.KILL_TIMEOUT + 0.5


def test_nobody_listening_is_a_clear_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(h.ClickHouseError, match="cannot talk to ClickHouse at http://127.0.0.1:%d" % port):
        h.ClickHouseHTTP("http://127.0.0.1:%d" % port, "u", PASSWORD).select("SELECT 1", 2)


def test_not_json_is_an_error(scripted):
    server = scripted(lambda r: (200, {}, b"1\n", None))
    with pytest.raises(h.ClickHouseError, match="not a JSON answer"):
        h.ClickHouseHTTP("http://127.0.0.1:%d" % server.port).select("SELECT 1", 2)


@pytest.mark.parametrize(
    "url, message",
    [
        ("http://user:pw@127.0.0.1:8123", "never in the URL"),
        ("http://user@127.0.0.1:8123", "never in the URL"),
        ("ftp://127.0.0.1", "http or https"),
        ("http://127.0.0.1:8123/?user=x", "no query string"),
        ("http://:8123", "no host"),
        ("http://127.0.0.1:99999", "out of range"),
    ],
)
def test_urls_refused(url, message):
    with pytest.raises(h.ClickHouseError, match=message) as caught:
        h.parse_url(url)
    assert "pw" not in str(caught.value)


def test_default_ports_and_path():
    assert h.parse_url("http://ch") == ("http", "ch", 8123, "/")
    assert h.parse_url("https://ch/proxy/") == ("https", "ch", 8443, "/proxy/")
