# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nightly run's outcome on the host: its state file, and the sinks it goes to.

Used by the ``lifecycle_report`` module (end of every run) and by ``jts-lifecycle-report``, the
``OnFailure=`` handler of ``jts-lifecycle.service`` (a run that died before it reported). The
state lives in a directory only root may change, reached without following symlinks; the
textfile, the journal and the webhook are the storage health check's own sinks
(``_sinks``, ``_textfile``), so a webhook URL is scrubbed from every message the same way.
"""

from __future__ import annotations

import json
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    WEBHOOK_ON,
    ReportError,
    check_state,
    empty_state,
    journal_messages,
    render_textfile,
    webhook_payload,
    webhook_wanted,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._sinks import (
    SinkError,
    build_sinks,
    send_journal_lines,
    webhook_entry,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._textfile import write_atomic
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    UnsafePath,
    open_private_dir,
    replace_private,
)

STATE_NAME = "last-run.json"
DEFAULT_IDENTIFIER = "jts-lifecycle"


def build_settings(settings):
    """The sinks of the run report, validated (module parameters or the handler's JSON config)."""
    state_dir = settings.get("state_dir")
    if not isinstance(state_dir, str) or not state_dir.startswith("/"):
        raise ReportError("state_dir: %r is not an absolute path" % (state_dir,))
    webhook_on = settings.get("webhook_on") or "failure"
    if webhook_on not in WEBHOOK_ON:
        raise ReportError("webhook_on: %r is not one of %s" % (webhook_on, ", ".join(WEBHOOK_ON)))
    try:
        sinks = build_sinks(dict(settings, journal_identifier=settings.get("journal_identifier") or DEFAULT_IDENTIFIER))
    except SinkError as exc:
        raise ReportError(str(exc)) from None
    sinks.update(state_dir=state_dir, webhook_on=webhook_on, host=settings.get("host") or None)
    return sinks


def load_state(state_dir):
    """``(state, warning)``: the last state, or a fresh one (with why) when there is none to read.

    A state that is not valid JSON of our version is set aside, not fatal: the run must still be
    reported. A state directory that is not private raises UnsafePath.
    """
    try:
        dir_fd = open_private_dir(state_dir, create=False)
    except FileNotFoundError:
        return empty_state(), None
    try:
        try:
            fd = os.open(STATE_NAME, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except FileNotFoundError:
            return empty_state(), None
        try:
            with os.fdopen(fd, "rb") as handle:
                fd = None
                data = handle.read(16 << 20)
        finally:
            if fd is not None:
                os.close(fd)
        try:
            return check_state(json.loads(data.decode("utf-8"))), None
        except (ValueError, UnicodeDecodeError) as exc:
            return empty_state(), "%s/%s was not readable (%s); started afresh" % (state_dir, STATE_NAME, exc)
    except OSError as exc:  # ELOOP: a symlink in place of the state
        return empty_state(), "%s/%s was not readable (%s); started afresh" % (state_dir, STATE_NAME, exc.strerror)
    finally:
        os.close(dir_fd)


def save_state(state_dir, state):
    """Replace the state atomically: a new file in the same private directory, fsync, rename."""
    replace_private(state_dir, STATE_NAME, (json.dumps(state, sort_keys=True, indent=1) + "\n").encode("utf-8"))


def read_textfile(path):
    """The textfile as it is now ('' when there is none), for the diff."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as handle:
        return handle.read(4 << 20).decode("utf-8", "replace")


def deliver(state, sinks, runner, which, host, check_mode=False, opener=None):
    """Write the state, then the textfile, the journal lines and the webhook.

    Returns ``{sink: {...}}``; a sink's error is inside, never raised, except for the state,
    which the others are rendered from (its error is the ``state`` entry's and the run fails).
    """
    report = {"state": {"path": os.path.join(sinks["state_dir"], STATE_NAME), "written": False}}
    if check_mode:
        report["state"]["skipped"] = "check mode"
    else:
        try:
            save_state(sinks["state_dir"], state)
            report["state"]["written"] = True
        except (OSError, UnsafePath) as exc:
            report["state"]["error"] = "cannot write the run state in %s: %s" % (
                sinks["state_dir"],
                getattr(exc, "strerror", None) or exc,
            )
    if sinks["textfile"]:
        report["textfile"] = _textfile(state, sinks["textfile"], check_mode)
    if sinks["journal"]:
        report["journal"] = _journal(state, sinks["journal_identifier"], runner, which, check_mode)
    if sinks["webhook_url"]:
        report["webhook"] = _webhook(state, sinks, host, check_mode, opener)
    return report


def _textfile(state, path, check_mode):
    entry = {"path": path, "written": False}
    if check_mode:
        entry["skipped"] = "check mode"
        return entry
    try:
        write_atomic(path, render_textfile(state))
        entry["written"] = True
    except OSError as exc:
        entry["error"] = "cannot write %s: %s" % (path, exc.strerror or exc)
    return entry


def _journal(state, identifier, runner, which, check_mode):
    entry = {"identifier": identifier, "sent": 0}
    if check_mode:
        entry["skipped"] = "check mode"
        return entry
    try:
        send_journal_lines(journal_messages(state), runner, which("logger"), identifier, counter=entry)
    except SinkError as exc:
        entry["error"] = str(exc)
    except Exception as exc:  # a time-out of logger, for one: never costs the other sinks
        entry["error"] = "logger: %s" % exc
    return entry


def _webhook(state, sinks, host, check_mode, opener):
    skip = None
    if not webhook_wanted(state, sinks["webhook_on"]):
        skip = "webhook_on is %s and the run %s" % (
            sinks["webhook_on"],
            "succeeded" if state["run"]["success"] else "failed",
        )
    return webhook_entry(
        sinks["webhook"], skip, lambda: webhook_payload(state, host), sinks["webhook_timeout"], check_mode, opener
    )


def sink_errors(report):
    """The sinks' error messages, in a stable order."""
    return ["%s: %s" % (name, report[name]["error"]) for name in sorted(report) if report[name].get("error")]
