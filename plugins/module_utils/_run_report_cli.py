# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``jts-lifecycle-report``: the last nightly run for people, and the ``OnFailure=`` handler.

Without options it prints the last run and each step (exit 0 when it succeeded, 1 when it
failed, 3 when no run was recorded). With ``--unit-failed`` (run by
``jts-lifecycle-failed.service``, which systemd starts when ``jts-lifecycle.service`` fails) it
records a run that died before it could report itself (``ansible-playbook`` killed, timed out,
crashed, or refused to start): run metrics set to failed, a journal line and the webhook. A run
that did report (its steps failed, it already alerted) is only noted in the journal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    ReportError,
    merge_dead_run,
    reported_by_playbook,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report_io import (
    build_settings,
    deliver,
    load_state,
    sink_errors,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

DEFAULT_CONFIG = "/etc/jts/lifecycle-report.json"


def _runner(argv, timeout):
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), proc.stderr.decode("utf-8", "replace")


def _stamp(seconds):
    if not seconds:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(seconds))


def failure_message(environ):
    """What systemd says about the failed run (``OnFailure=`` units get ``MONITOR_*``)."""
    unit = environ.get("MONITOR_UNIT") or "jts-lifecycle.service"
    result = environ.get("MONITOR_SERVICE_RESULT") or "unknown"
    code = environ.get("MONITOR_EXIT_CODE") or "?"
    status = environ.get("MONITOR_EXIT_STATUS") or "?"
    return "%s failed before the run reported (result %s, %s %s)" % (unit, result, code, status)


def render_summary(state):
    run = state["run"]
    if run.get("ended") is None:
        return "no lifecycle run recorded yet"
    lines = [
        "last run: %s, ended %s (%s); last full success: %s"
        % ("SUCCESS" if run["success"] else "FAILED", _stamp(run["ended"]), run["message"], _stamp(run["last_success"]))
    ]
    for name in sorted(state["steps"]):
        step = state["steps"][name]
        figures = ", ".join("%s=%s" % item for item in sorted(step["figures"].items()))
        lines.append(
            "  %-8s %-8s %8.1f s  last success %s%s%s"
            % (
                name,
                step["status"],
                step["duration"],
                _stamp(step.get("last_success")),
                "  " + figures if figures else "",
                "  (" + step["message"] + ")" if step["message"] else "",
            )
        )
    return "\n".join(lines)


def main(argv=None, environ=None, opener=None):
    parser = argparse.ArgumentParser(prog="jts-lifecycle-report", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=DEFAULT_CONFIG, help="the report's settings (%(default)s)")
    parser.add_argument("--unit-failed", action="store_true", help="record a failed run (OnFailure= handler)")
    parser.add_argument("--json", action="store_true", help="print the state as JSON")
    args = parser.parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        with open(args.config, encoding="utf-8") as handle:
            sinks = build_settings(json.load(handle))
        state, warning = load_state(sinks["state_dir"])
    except (OSError, ValueError, UnsafePath) as exc:  # ReportError is a ValueError
        print("jts-lifecycle-report: %s" % exc, file=sys.stderr)
        return 3
    if warning:
        print("jts-lifecycle-report: %s" % warning, file=sys.stderr)
    if not args.unit_failed:
        print(json.dumps(state, indent=1, sort_keys=True) if args.json else render_summary(state))
        run = state["run"]
        return 3 if run.get("ended") is None else (0 if run["success"] else 1)

    invocation = environ.get("MONITOR_INVOCATION_ID") or ""
    if reported_by_playbook(state, invocation):
        print("jts-lifecycle-report: the failed run %s reported itself: %s" % (invocation, state["run"]["message"]))
        return 0
    try:
        state = merge_dead_run(state, invocation, round(time.time(), 3), failure_message(environ))
    except ReportError as exc:
        print("jts-lifecycle-report: %s" % exc, file=sys.stderr)
        return 3
    host = sinks.get("host") or socket.getfqdn()
    report = deliver(state, sinks, _runner, shutil.which, host, opener=opener)
    print("jts-lifecycle-report: recorded: %s" % state["run"]["message"])
    errors = sink_errors(report)
    for error in errors:
        print("jts-lifecycle-report: %s" % error, file=sys.stderr)
    return 1 if errors else 0
