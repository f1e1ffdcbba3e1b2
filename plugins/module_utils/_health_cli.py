# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``jts-storage-check``: the storage health check for people and for Nagios/Icinga.

Installed on the host as /usr/local/bin/jts-storage-check (roles/lifecycle/tasks/install_health.yml),
a small wrapper that puts the installed collection on ``sys.path`` and calls ``main``. It reads a
JSON config (default /etc/jts/storage-health.json) holding the same data as the
``storage_health`` module's parameters (the freshness checks included: ages of the newest
backups, NAS snapshots and last successful run), prints one status line with perfdata and the report
(or ``--json``), and exits 0 ok, 1 warning, 2 critical, 3 unknown. It never hangs: every call
is time-limited, and a timer ends the process with UNKNOWN one second after its time-out.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import sys
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._health import check_and_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_sinks import deliver
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import (
    EXIT_CODES,
    HealthError,
    build_config,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._process import run_timed
from ansible_collections.jts.tiered_storage.plugins.module_utils._sinks import SinkError, build_sinks, scrub_secrets
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout  # noqa: F401 - the tests name it here

DEFAULT_CONFIG = "/etc/jts/storage-health.json"
UNKNOWN = EXIT_CODES["unknown"]
_PATH_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


def which(name):
    """A tool's path, also in the sbin directories a Nagios user's PATH often lacks."""
    found = shutil.which(name)
    if found:
        return found
    for directory in _PATH_DIRS:
        candidate = os.path.join(directory, name)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def subprocess_runner(argv, timeout):
    """``(rc, stdout, stderr)`` of ``argv`` (C locale); ProbeTimeout after ``timeout`` seconds.

    On a time-out the child is killed and waited for at most half a second: a child stuck in
    the kernel must not hold the check.
    """
    return run_timed(argv, timeout, grace=0.5)


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise HealthError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
    except ValueError as exc:
        raise HealthError("%s is not valid JSON: %s" % (path, exc)) from None


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="jts-storage-check",
        description="Check the storage tiers (space, inodes, mounts, LVM, NAS, btrfs) and the freshness of "
        "the backups, NAS snapshots and last successful nightly run the Nagios way: "
        "exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.",
    )
    parser.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="JSON config (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the full result as JSON")
    parser.add_argument(
        "--report",
        action="store_true",
        help="print the report for people only (a table per tier), without the Nagios status line",
    )
    parser.add_argument("-t", "--timeout", type=float, help="seconds for the whole check (overrides the config)")
    parser.add_argument(
        "--sinks", action="store_true", help="also deliver to the config's sinks (textfile, journal, webhook)"
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--freshness",
        action="store_true",
        help="check only the freshness of the backups, NAS snapshots and last successful run (its own Nagios "
        "service, like sanoid --monitor-snapshots beside --monitor-health); status line FRESHNESS ...",
    )
    scope.add_argument("--all", action="store_true", help="check the tiers and the freshness together")
    return parser.parse_args(argv)


def _give_up(timeout, stream):
    def handler(_signum, _frame):
        stream.write("STORAGE UNKNOWN - the check did not finish within %gs (a stalled call?)\n" % timeout)
        stream.flush()
        os._exit(UNKNOWN)

    return handler


def run_check(
    settings, runner=subprocess_runner, which_fn=which, host=None, sinks=False, scope="tiers", **checker_args
):
    """Validate, check and (optionally) deliver; returns the full result dict.

    ``scope``: ``tiers`` (the default: the config's freshness checks are not run), ``freshness``
    (only they; the tiers are validated, not checked) or ``all``.
    """
    config = build_config(settings)
    sink_settings = build_sinks(settings)
    if scope == "tiers":
        config["freshness"] = dict(config["freshness"], checks=[])
    elif scope == "freshness":
        if not config["freshness"]["checks"]:
            raise HealthError("--freshness: the config has no freshness checks (its 'freshness' block is empty)")
        config["tiers"] = []
    host = host or socket.gethostname()
    service = "FRESHNESS" if scope == "freshness" else None
    result = check_and_report(config, runner, which_fn, host, service=service, **checker_args)
    if sinks:
        result["sinks"] = deliver(result, sink_settings, runner, which_fn, host)
    return result


def main(argv=None, stdout=None, **checker_args):
    """Entry point of jts-storage-check; returns the exit code."""
    stdout = stdout or sys.stdout
    args = parse_args(argv)
    try:
        settings = load_config(args.config)
        if args.timeout is not None and isinstance(settings, dict):
            settings["timeout"] = args.timeout
        timeout = build_config(settings)["timeout"] if isinstance(settings, dict) else 10.0
        if args.freshness and args.sinks:
            raise HealthError("--sinks writes the whole picture: give it alone or with --all, not with --freshness")
    except HealthError as exc:
        stdout.write("STORAGE UNKNOWN - config: %s\n" % exc)
        return UNKNOWN
    # belt and braces: whatever blocks, the process ends one second after its time-out
    previous = signal.signal(signal.SIGALRM, _give_up(timeout, stdout))
    signal.setitimer(signal.ITIMER_REAL, timeout + 0.9)
    started = time.monotonic()
    try:
        scope = "freshness" if args.freshness else "all" if args.all else "tiers"
        result = run_check(settings, sinks=args.sinks, scope=scope, **checker_args)
    except (HealthError, SinkError) as exc:
        stdout.write("STORAGE UNKNOWN - config: %s\n" % exc)
        return UNKNOWN
    except Exception as exc:
        # A traceback would exit 1 (WARNING to Nagios) and could show the webhook URL: UNKNOWN,
        # with the message scrubbed of the URL and its parts.
        url = settings.get("webhook_url") if isinstance(settings, dict) else None
        stdout.write("STORAGE UNKNOWN - internal error: %s: %s\n" % (type(exc).__name__, scrub_secrets(exc, url)))
        return UNKNOWN
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    result["wall_seconds"] = round(time.monotonic() - started, 3)
    if args.json:
        stdout.write(json.dumps(result, indent=2, sort_keys=True) + "\n")
    else:
        if not args.report:
            stdout.write(result["status_line"] + "\n")
        stdout.write(result["report"] + "\n")
        for name, entry in sorted((result.get("sinks") or {}).items()):
            if entry.get("error"):
                stdout.write("sink %s: %s\n" % (name, entry["error"]))
    stdout.flush()
    return result["exit_code"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
