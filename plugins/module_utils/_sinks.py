# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ways a report leaves the host, and their settings (``build_sinks``): the journal (``logger``) and a webhook (an HTTP POST of JSON).

Transports only: what to say is the caller's (storage health: ``_health_sinks``; the nightly run
report: ``_run_report_io``). A webhook URL may hold a token: ``WebhookTarget`` keeps what to scrub,
and no message, result or traceback holds any part of it. ``SinkError`` is a sink that could not
deliver; a sink's failure is reported beside the result, never instead of it.
"""

from __future__ import annotations

import json

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._severity import SEVERITY_RANK
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_bool


class SinkError(JtsError, RuntimeError):
    """A sink could not deliver; the message never holds the webhook URL or any part of it."""


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

DEFAULT_IDENTIFIER = "jts-storage-health"


def build_sinks(settings):
    """Validate the sink settings (module parameters or the command's JSON config)."""
    textfile = settings.get("textfile") or None
    if textfile is not None and (not isinstance(textfile, str) or not textfile.startswith("/")):
        raise SinkError("textfile: %r is not an absolute path" % (textfile,))
    if textfile is not None and not textfile.endswith(".prom"):
        raise SinkError("textfile: %s must end in .prom (node_exporter reads only those)" % textfile)
    identifier = settings.get("journal_identifier") or DEFAULT_IDENTIFIER
    if not isinstance(identifier, str) or any(c.isspace() for c in identifier):
        raise SinkError("journal_identifier: %r must be one word" % (identifier,))
    url = settings.get("webhook_url") or None
    # validated here, up front; an unusable URL is an error of the webhook sink alone (reported on
    # every run, check mode included), never of the run: the report and the other sinks are kept
    webhook = parse_webhook_url(url) if url is not None else None
    try:
        timeout = float(settings.get("webhook_timeout") or 5)
    except (TypeError, ValueError):
        raise SinkError("webhook_timeout: %r is not a number of seconds" % (settings.get("webhook_timeout"),)) from None
    min_severity = settings.get("webhook_min_severity") or "warning"
    if min_severity not in SEVERITY_RANK:
        raise SinkError("webhook_min_severity: %r is not one of ok, warning, unknown, critical" % (min_severity,))
    try:
        journal = parse_bool(settings.get("journal") or False, "journal")
    except UnitError as exc:
        raise SinkError(str(exc)) from None
    return {
        "textfile": textfile,
        "journal": journal,
        "journal_identifier": identifier,
        "webhook_url": url,
        "webhook": webhook,
        "webhook_timeout": timeout,
        "webhook_min_severity": min_severity,
    }


# ----------------------------------------------------------------------------------------------
# Journal
# ----------------------------------------------------------------------------------------------


def send_journal_lines(messages, runner, logger_bin, identifier, counter=None):
    """Send each ``(priority, message)`` with ``logger -t <identifier> -p user.<priority> -- <message>``.

    Returns how many were sent; a failing ``logger`` is a SinkError, a runner's own error (a
    time-out) goes through. ``counter`` (a dict) gets ``sent`` updated as each line goes out.
    """
    if not logger_bin:
        raise SinkError("logger (util-linux) not found")
    sent = 0
    for priority, message in messages:
        rc, _out, err = runner([logger_bin, "-t", identifier, "-p", "user." + priority, "--", message], 5.0)
        if rc != 0:
            raise SinkError("logger failed (rc %d): %s" % (rc, (err or "").strip()))
        sent += 1
        if counter is not None:
            counter["sent"] = sent
    return sent


# ----------------------------------------------------------------------------------------------
# Webhook
# ----------------------------------------------------------------------------------------------


# characters a URL may not hold as they are: space, controls, DEL and anything not ASCII
_URL_UNSAFE = frozenset(chr(c) for c in range(0x21)) | {"\x7f"}
_BAD_PORT = "webhook_url: the port is not a number from 1 to 65535"


class WebhookTarget:
    """A parsed webhook URL: what to request, with which headers, and what to scrub from messages.

    Userinfo (``https://user:password@host/...``) leaves the URL and becomes an
    ``Authorization: Basic`` header, as curl does: http.client would otherwise read
    ``password@host`` as a port. ``error`` holds why the URL cannot be used (never any part of it).
    Its repr shows neither the URL nor the header.
    """

    def __init__(self, url=None, headers=None, secrets=(), error=None):
        self.url = url
        self.headers = headers or {}
        self.error = error
        # longest first, so that a whole URL is replaced before its parts
        self._secrets = sorted({pair for pair in secrets if pair[0]}, key=lambda pair: -len(pair[0]))

    def __repr__(self):
        return "<WebhookTarget%s>" % (" error" if self.error else "")

    __str__ = __repr__

    def scrub(self, text):
        """``text`` without the URL (``<webhook url>``) or its userinfo, path and query (``<secret>``)."""
        text = str(text)
        for secret, placeholder in self._secrets:
            text = text.replace(secret, placeholder)
        return text


def parse_webhook_url(url):
    """Validate ``url`` up front; returns a WebhookTarget (with ``error`` set when unusable).

    Never raises, and no message holds any part of the URL: it may hold a token.
    """
    if not isinstance(url, str):
        return WebhookTarget(error="webhook_url must be a string")
    from urllib.parse import unquote, urlsplit, urlunsplit

    raw = url
    url = url.strip()  # a vaulted value often ends in a newline
    secrets = [(raw, "<webhook url>"), (url, "<webhook url>")]
    try:
        parts = urlsplit(url)
    except ValueError:  # such as an unclosed [IPv6 address
        return WebhookTarget(secrets=secrets, error="webhook_url is not a valid URL")
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user = parts.username or ""
    password = parts.password or ""
    # what an error text could quote: userinfo, user, password, path and query, raw and decoded
    secrets += [(userinfo + at, "<secret>@"), (userinfo, "<secret>")]
    secrets += [(text, "<secret>") for text in (user, unquote(user), password, unquote(password))]
    if parts.query:
        path_query = parts.path + "?" + parts.query
        secrets += [(text, "<secret>") for text in (path_query, parts.query, unquote(parts.query))]
    if len(parts.path) > 1:
        secrets += [(text, "<secret>") for text in (parts.path, unquote(parts.path))]
    if any(c in _URL_UNSAFE or c > "\x7f" for c in url):
        error = "webhook_url holds a space, a control or a non-ASCII character (percent-encode it)"
        return WebhookTarget(secrets=secrets, error=error)
    if parts.scheme not in ("https", "http") or not url.lower().startswith(parts.scheme + "://"):
        return WebhookTarget(secrets=secrets, error="webhook_url must start with https:// or http://")
    try:
        port = parts.port
    except ValueError:  # not a number, or out of range; its text would show the value
        return WebhookTarget(secrets=secrets, error=_BAD_PORT)
    if port == 0:
        return WebhookTarget(secrets=secrets, error=_BAD_PORT)
    if not parts.hostname:
        return WebhookTarget(secrets=secrets, error="webhook_url has no host")
    headers = {}
    if at and (user or password):
        import base64

        credentials = ("%s:%s" % (unquote(user), unquote(password))).encode("utf-8")
        encoded = base64.b64encode(credentials).decode("ascii")
        headers["Authorization"] = "Basic " + encoded
        secrets.append((encoded, "<secret>"))
    # the URL requested: no userinfo (now in the header), no fragment (never sent)
    request_url = urlunsplit((parts.scheme, hostport, parts.path, parts.query, ""))
    secrets.append((request_url, "<webhook url>"))
    return WebhookTarget(request_url, headers, secrets)


def scrub_secrets(text, url):
    """``text`` without the webhook URL or its parts (``url``: a string or a WebhookTarget)."""
    if not url:
        return str(text)
    target = url if isinstance(url, WebhookTarget) else parse_webhook_url(url)
    return target.scrub(text)


def _urlopen(request, timeout):
    """urlopen that follows no redirect: a 3xx is an HTTPError.

    Following one would turn the POST into a GET (the alert lost, yet "sent") and carry the
    Authorization header to whatever host the answer names.
    """
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, req, fp, code, msg, headers, newurl):
            return None

    return urllib.request.build_opener(NoRedirect).open(request, timeout=timeout)


def send_webhook(url, payload, timeout, opener=None):
    """POST ``payload`` as JSON; returns the HTTP status.

    ``url`` is a string or a WebhookTarget. Whatever goes wrong is a SinkError whose message holds
    no part of the URL, and which chains no other exception (a traceback cannot show one).
    """
    target = url if isinstance(url, WebhookTarget) else parse_webhook_url(url)
    if target.error:
        raise SinkError(target.error)
    # Imported here, not at the top: urllib.request costs ~0.35 s to import on the emulated lab
    # VM, and jts-storage-check (no webhook in most configs) must answer in well under a second.
    import urllib.error
    import urllib.request

    message = None
    try:
        data = json.dumps(payload, sort_keys=True).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "jts-storage-health"}
        headers.update(target.headers)
        request = urllib.request.Request(target.url, data=data, method="POST", headers=headers)  # noqa: S310
        with (opener or _urlopen)(request, timeout=timeout) as response:
            return int(getattr(response, "status", None) or response.getcode())
    except urllib.error.HTTPError as exc:
        message = "webhook answered HTTP %d" % exc.code
        if 300 <= exc.code < 400:
            message += " (redirects are not followed)"
        exc.close()
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, Exception) and not isinstance(reason, OSError):
            reason = "%s: %s" % (type(reason).__name__, reason)
        message = "webhook not delivered: %s" % target.scrub(reason)
    except OSError as exc:  # time-outs, refused connections, TLS errors
        message = "webhook not delivered: %s" % target.scrub(exc)
    except Exception as exc:  # InvalidURL, ValueError, HTTPException, anything: never a crash
        message = "webhook not delivered: %s: %s" % (type(exc).__name__, target.scrub(exc))
    # raised here, outside the except clauses, so that it has no __context__ holding the original
    raise SinkError(message)


def webhook_entry(target, skip_reason, payload, timeout, check_mode=False, opener=None):
    """Deliver to the webhook sink and say how it went: ``{"sent", "http_status" | "error" | "skipped"}``.

    ``target`` is a WebhookTarget (its ``error`` is the sink's error, on every run); ``skip_reason``
    says why this run is not sent (or None); ``payload()`` builds what is sent. Never raises, and no
    message holds any part of the URL.
    """
    entry = {"sent": False}
    if target.error:
        entry["error"] = target.error
    elif skip_reason:
        entry["skipped"] = skip_reason
    elif check_mode:
        entry["skipped"] = "check mode"
    else:
        try:
            entry["http_status"] = send_webhook(target, payload(), timeout, opener)
            entry["sent"] = True
        except SinkError as exc:
            entry["error"] = target.scrub(exc)
        except Exception as exc:  # send_webhook raises SinkError only; belt and braces
            entry["error"] = "webhook not delivered: %s: %s" % (type(exc).__name__, target.scrub(exc))
    return entry
