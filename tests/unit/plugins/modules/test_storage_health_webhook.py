"""storage_health's webhook sink when its URL holds secrets (issue 14, case 11).

``webhook_url: https://alerts:TOKEN@hooks.example.internal/notify`` (credentials, no port) made
http.client read ``TOKEN@hooks.example.internal`` as a port: an uncaught ``InvalidURL`` holding the
token crashed the module and the report was lost. The URL is now parsed up front: its userinfo
becomes an ``Authorization: Basic`` header and leaves the URL; a URL that cannot be used is a
webhook sink error (the report, textfile and journal are kept); whatever sending raises becomes a
``SinkError`` with the URL, userinfo, path and query scrubbed.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import ssl
import urllib.error

import pytest
from ansible.module_utils import basic
from test_storage_health import LAB_TIERS, Fakes, lab_commands

from ansible_collections.jts.tiered_storage.plugins.module_utils import _health, _health_cli, _health_sinks
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_sinks import (
    SinkError,
    build_sinks,
    deliver,
    send_webhook,
)
from ansible_collections.jts.tiered_storage.plugins.modules import storage_health

URL = "https://alerts:TOKEN@hooks.example.internal/notify"
SECRETS = ("TOKEN", "QSECRET", base64.b64encode(b"alerts:TOKEN").decode())


def assert_no_secret(*texts):
    for text in texts:
        for secret in SECRETS:
            assert secret not in str(text), "secret %r in %r" % (secret, text)


def basic_auth(user_password):
    return "Basic " + base64.b64encode(user_password.encode("utf-8")).decode("ascii")


class Refused:
    """``socket.create_connection`` that records where it was asked to connect and refuses."""

    def __init__(self):
        self.addresses = []

    def __call__(self, address, *args, **kwargs):
        self.addresses.append(address)
        raise ConnectionRefusedError(111, "Connection refused")


class Response:
    status = 204

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


class Recorder:
    """An opener that records the request and answers 204."""

    def __init__(self):
        self.requests = []

    def __call__(self, request, timeout):
        self.requests.append(request)
        return Response()


def raising(error):
    def opener(request, timeout):
        raise error

    return opener


@pytest.fixture
def module_run(monkeypatch, run_module):
    fakes = Fakes(commands=dict(lab_commands(), logger=(0, "", "")))
    monkeypatch.setattr(_health, "statvfs_with_timeout", fakes.statvfs)
    monkeypatch.setattr(_health, "statvfs_in_process", lambda path: fakes.statvfs(path, None))
    monkeypatch.setattr(_health, "tcp_probe", fakes.probe)
    monkeypatch.setattr(_health, "_read_text", fakes.read_file)
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, text: warned.append(text))

    def call(args, check_mode=False):
        def commands(cmd, **kw):
            return fakes.runner(cmd[3:], float(cmd[2]))

        return run_module(storage_health, args, commands=commands, check_mode=check_mode)

    call.warned = warned
    return call


# ------------------------------------------------------------------------------ the module


def test_module_with_credentials_in_the_url_keeps_its_report_and_shows_no_token(module_run, monkeypatch, tmp_path):
    """The exact URL of the issue, with the real urllib/http.client stack; only the socket is faked."""
    refused = Refused()
    monkeypatch.setattr(socket, "create_connection", refused)
    prom = tmp_path / "jts.prom"
    args = {"tiers": LAB_TIERS, "textfile": str(prom), "journal": True, "webhook_url": URL}
    result = module_run(dict(args, webhook_min_severity="ok"))
    assert refused.addresses and refused.addresses[0][:2] == ("hooks.example.internal", 443)
    assert result.get("failed") is not True and result["status"] == "ok"
    assert result["report"].startswith("Storage health of ")
    assert result["sinks"]["textfile"]["written"] is True and "jts_storage_status 0" in prom.read_text()
    assert result["sinks"]["journal"]["sent"] == 1
    assert result["sinks"]["webhook"] == {
        "sent": False,
        "error": "webhook not delivered: [Errno 111] Connection refused",
    }
    assert module_run.warned == ["storage_health sink webhook: webhook not delivered: [Errno 111] Connection refused"]
    assert_no_secret(json.dumps(result), module_run.warned)


def test_module_bad_webhook_url_is_a_warning_not_a_failure(module_run, tmp_path):
    prom = tmp_path / "jts.prom"
    result = module_run({"tiers": LAB_TIERS, "textfile": str(prom), "webhook_url": "ftp://alerts:TOKEN@x/QSECRET"})
    assert result.get("failed") is not True and "report" in result and prom.exists()
    assert result["sinks"]["webhook"] == {"sent": False, "error": "webhook_url must start with https:// or http://"}
    assert module_run.warned == ["storage_health sink webhook: webhook_url must start with https:// or http://"]
    # and check mode shows it too: validation only reads
    module_run.warned.clear()
    result = module_run({"tiers": LAB_TIERS, "webhook_url": "https://alerts:TOKEN@x:TOKEN/"}, check_mode=True)
    assert result["sinks"]["webhook"]["error"] == "webhook_url: the port is not a number from 1 to 65535"
    assert_no_secret(json.dumps(result), module_run.warned)


# ------------------------------------------------------------------------------ parsing and the header


@pytest.mark.parametrize(
    ("url", "request_url", "authorization"),
    [
        (URL, "https://hooks.example.internal/notify", basic_auth("alerts:TOKEN")),
        ("https://TOKEN@hooks.example.internal/n", "https://hooks.example.internal/n", basic_auth("TOKEN:")),
        (
            "http://us%40er:p%3A%2FTOKEN@Hooks.Example:8443/x/y?k=QSECRET#frag",
            "http://Hooks.Example:8443/x/y?k=QSECRET",
            basic_auth("us@er:p:/TOKEN"),
        ),
        ("https://a:b:TOKEN@[::1]:9/n", "https://[::1]:9/n", basic_auth("a:b:TOKEN")),
        ("  https://hooks.example.internal/n?t=QSECRET\n", "https://hooks.example.internal/n?t=QSECRET", None),
        ("HTTPS://@hooks.example.internal", "https://hooks.example.internal", None),
    ],
)
def test_credentials_leave_the_url_for_a_basic_header(url, request_url, authorization):
    recorder = Recorder()
    result = Fakes(commands=lab_commands()).check({"tiers": LAB_TIERS})
    sinks = build_sinks({"webhook_url": url, "webhook_min_severity": "ok"})
    report = deliver(result, sinks, None, None, "h", opener=recorder)
    assert report["webhook"] == {"sent": True, "http_status": 204}
    (request,) = recorder.requests
    assert request.full_url == request_url
    assert request.get_header("Authorization") == authorization
    assert request.get_header("Content-type") == "application/json"
    assert "@" not in request.host


def test_parsed_target_never_shows_itself():
    target = _health_sinks.parse_webhook_url(URL + "?t=QSECRET")
    assert_no_secret(repr(target), str(target))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://alerts:TOKEN@hooks/x", "webhook_url must start with https:// or http://"),
        ("hooks.example.internal/TOKEN", "webhook_url must start with https:// or http://"),
        (
            "https://alerts:TOKEN@hooks.example.internal:notify/x",
            "webhook_url: the port is not a number from 1 to 65535",
        ),
        ("https://hooks.example.internal:TOKEN/notify", "webhook_url: the port is not a number from 1 to 65535"),
        (
            "https://alerts:TOKEN@hooks.example.internal:99999/x",
            "webhook_url: the port is not a number from 1 to 65535",
        ),
        ("https://alerts:TOKEN@hooks.example.internal:0/x", "webhook_url: the port is not a number from 1 to 65535"),
        ("https://alerts:TOKEN@/x", "webhook_url has no host"),
        ("https:///TOKEN", "webhook_url has no host"),
        ("https://alerts:TOKEN@[::1/x", "webhook_url is not a valid URL"),
        ("https://alerts:TO KEN@hooks/x", "webhook_url holds a space, a control or a non-ASCII character"),
        ("https://alerts:TOKEN\r\n@hooks/x", "webhook_url holds a space, a control or a non-ASCII character"),
        ("https://alerts:TÖKEN@hooks/x", "webhook_url holds a space, a control or a non-ASCII character"),
        (42, "webhook_url must be a string"),
    ],
)
def test_unusable_urls_are_a_webhook_error_that_never_echoes(url, message):
    ok = Fakes(commands=lab_commands()).check({"tiers": LAB_TIERS})
    sinks = build_sinks({"webhook_url": url})  # no exception: the other sinks still run
    never = raising(AssertionError("sent"))
    # shown on every run, below webhook_min_severity and in check mode too: found before it matters
    for check_mode in (False, True):
        report = deliver(ok, sinks, None, None, "h", check_mode=check_mode, opener=never)
        assert report["webhook"]["sent"] is False
        assert report["webhook"]["error"].startswith(message)
        assert_no_secret(report)
    with pytest.raises(SinkError) as exc:
        send_webhook(url, {}, 1, never)
    assert str(exc.value).startswith(message)
    assert_no_secret(exc.value)


# ------------------------------------------------------------------------------ errors while sending


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            http.client.InvalidURL("nonnumeric port: 'TOKEN@hooks.example.internal'"),
            "webhook not delivered: InvalidURL: nonnumeric port: '<secret>@hooks.example.internal'",
        ),
        (
            ValueError("unknown url " + URL + "?t=QSECRET"),
            "webhook not delivered: ValueError: unknown url <webhook url>",
        ),
        (
            http.client.RemoteDisconnected("Remote end closed connection without response"),
            "webhook not delivered: Remote end closed connection without response",
        ),
        (
            UnicodeEncodeError("ascii", "TOKEN\xe9", 5, 6, "ordinal not in range(128)"),
            "webhook not delivered: UnicodeEncodeError: 'ascii' codec can't encode character",
        ),
        (ssl.SSLError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"), "webhook not delivered: "),
        (urllib.error.URLError(OSError("connect to alerts:TOKEN@hooks failed")), "webhook not delivered: connect to"),
        (OSError("GET /notify?t=QSECRET failed"), "webhook not delivered: GET <secret> failed"),
        (RuntimeError("TOKEN"), "webhook not delivered: RuntimeError: <secret>"),
        (
            urllib.error.HTTPError(URL, 401, "Unauthorized TOKEN", {}, io.BytesIO(b"TOKEN")),
            "webhook answered HTTP 401",
        ),
        (urllib.error.HTTPError(URL, 302, "Found", {}, None), "webhook answered HTTP 302 (redirects are not followed)"),
    ],
)
def test_any_error_while_sending_is_a_scrubbed_sink_error(error, message):
    with pytest.raises(SinkError) as exc:
        send_webhook(URL + "?t=QSECRET", {}, 1, raising(error))
    assert str(exc.value).startswith(message)
    # nothing chained: a traceback printed later cannot show the original text
    assert exc.value.__context__ is None and exc.value.__cause__ is None
    assert_no_secret(exc.value, exc.value.args)


def test_deliver_never_raises_whatever_the_webhook_does():
    result = Fakes(commands=lab_commands()).check({"tiers": LAB_TIERS})
    sinks = build_sinks({"webhook_url": URL, "webhook_min_severity": "ok"})
    report = deliver(result, sinks, None, None, "h", opener=raising(KeyError("TOKEN")))
    assert report["webhook"] == {"sent": False, "error": "webhook not delivered: KeyError: '<secret>'"}


# ------------------------------------------------------------------------------ jts-storage-check


def run_cli(tmp_path, settings, *args):
    config = tmp_path / "health.json"
    config.write_text(json.dumps(settings))
    fakes = Fakes(commands=lab_commands())
    out = io.StringIO()
    original = _health_cli.run_check

    def run_check(settings, sinks=False, **kw):
        return original(settings, runner=fakes.runner, which_fn=fakes.which, host="jts-lab", sinks=sinks, **kw)

    _health_cli.run_check = run_check
    try:
        code = _health_cli.main(
            ["--config", str(config), *args],
            stdout=out,
            read_file=fakes.read_file,
            statvfs=fakes.statvfs,
            probe=fakes.probe,
        )
    finally:
        _health_cli.run_check = original
    return code, out.getvalue()


@pytest.mark.parametrize("args", [("--sinks",), ("--sinks", "--json"), ()])
def test_cli_with_credentials_in_the_url_prints_no_token(tmp_path, monkeypatch, capsys, args):
    monkeypatch.setattr(socket, "create_connection", Refused())
    settings = {"tiers": LAB_TIERS, "webhook_url": URL + "?t=QSECRET", "webhook_min_severity": "ok"}
    code, out = run_cli(tmp_path, settings, *args)
    assert code == 0, out
    if args == ("--sinks",):
        assert "sink webhook: webhook not delivered: [Errno 111] Connection refused" in out.splitlines()
    captured = capsys.readouterr()
    assert_no_secret(out, captured.out, captured.err)


@pytest.mark.parametrize("url", ["https://alerts:TOKEN@hooks:TOKEN/x", "ftp://alerts:TOKEN@hooks/x", "x"])
def test_cli_bad_url_is_a_sink_error_and_the_check_still_answers(tmp_path, url):
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS, "webhook_url": url, "webhook_min_severity": "ok"}, "--sinks")
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("STORAGE OK - ")
    assert [line for line in lines if line.startswith("sink webhook: webhook_url")], out
    assert_no_secret(out)


def test_cli_unexpected_error_is_unknown_and_scrubbed(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom at " + URL)

    monkeypatch.setattr(_health_cli, "deliver", broken)
    code, out = run_cli(tmp_path, {"tiers": LAB_TIERS, "webhook_url": URL}, "--sinks")
    assert code == 3
    assert out == "STORAGE UNKNOWN - internal error: RuntimeError: boom at <webhook url>\n"
