#!/usr/bin/env python3
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run every benchmark under benchmarks/ in one go and print one table of ratios (``make bench``).

Run as root: ``.venv/bin/python benchmarks/run_all.py [--quick] [--only NAME] [--workdir DIR] [--json FILE]``.
Quick mode (``--quick`` or ``JTS_BENCH_QUICK=1``) passes ``--quick`` to every script: small data,
one round, seconds instead of minutes.

Each ``bench_<subject>.py`` runs in turn with its own output shown as it comes, and writes its
figures with ``--json FILE``: ``{"rows": [[set, contender, seconds, peak MiB], ...],
"figures": {...}, "checks": [[name, value, ok], ...]}``. The table gives, for every set, every
contender with its time, its peak memory and the ratio of the subject's first contender in that
set (a contender whose name starts with ``<subject>``, e.g. ``tier_migrate``) to it: below 1.0 the
subject is faster. Then every target (check) with its value and ``ok`` or ``MISSED``.

Exit status: 0 when every script ran (missed targets are shown, not fatal unless ``--strict``),
1 when a script failed or a target was missed with ``--strict``, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))


class ParseError(ValueError):
    """A script's figures are not in the shape this runner reads."""


def discover(directory=HERE):
    """The benchmark scripts, ``bench_*.py``, by name."""
    return sorted(glob.glob(os.path.join(directory, "bench_*.py")))


def subject_of(script):
    """``bench_tier_migrate.py`` -> ``tier_migrate``: what the script measures against the others."""
    name = os.path.basename(script)
    return name[len("bench_") : -len(".py")]


def parse_figures(text, source="<json>"):
    """The JSON a script wrote with ``--json``: rows, figures and checks, validated."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError("%s: not JSON: %s" % (source, exc)) from exc
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ParseError("%s: no list of rows" % source)
    rows = []
    for row in data["rows"]:
        if not isinstance(row, (list, tuple)) or len(row) < 3:
            raise ParseError("%s: a row is not [set, contender, seconds, peak MiB]: %r" % (source, row))
        try:
            rows.append(
                {
                    "set": str(row[0]),
                    "contender": str(row[1]),
                    "seconds": float(row[2]),
                    "peak_mib": float(row[3]) if len(row) > 3 and row[3] is not None else None,
                }
            )
        except (TypeError, ValueError) as exc:
            raise ParseError("%s: a row has no number of seconds: %r" % (source, row)) from exc
    checks = []
    for check in data.get("checks") or []:
        if not isinstance(check, (list, tuple)) or len(check) != 3:
            raise ParseError("%s: a check is not [name, value, ok]: %r" % (source, check))
        checks.append({"name": str(check[0]), "value": float(check[1]), "ok": bool(check[2])})
    figures = data.get("figures") or {}
    if not isinstance(figures, dict):
        raise ParseError("%s: figures is not a mapping" % source)
    return {"rows": rows, "checks": checks, "figures": figures}


def ratios(rows, subject):
    """Add ``ratio`` to each row: the set's first ``subject`` contender's seconds / this row's."""
    out = []
    for row in rows:
        reference = next(
            (r for r in rows if r["set"] == row["set"] and r["contender"].startswith(subject)),
            None,
        )
        ratio = None
        if reference is not None and row["seconds"] > 0:
            ratio = reference["seconds"] / row["seconds"]
        out.append(dict(row, ratio=ratio, reference=reference["contender"] if reference else None))
    return out


def render(results):
    """One table: every benchmark's sets and contenders with ratios, then every target."""
    lines = []
    head = ("benchmark", "set", "contender", "seconds", "peak MiB", "ratio")
    table = [head]
    for name, res in results:
        if res.get("error"):
            table.append((name, "-", "FAILED: %s" % res["error"], "-", "-", "-"))
            continue
        for row in ratios(res["rows"], name):
            table.append(
                (
                    name,
                    row["set"],
                    row["contender"],
                    "%.2f" % row["seconds"],
                    "-" if row["peak_mib"] is None else "%.1f" % row["peak_mib"],
                    "-" if row["ratio"] is None else "%.2f" % row["ratio"],
                )
            )
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    for row in table:
        cells = [c.rjust(w) if i >= 3 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(cells).rstrip())
    lines.append("ratio: the set's first <benchmark> contender's seconds / this contender's (below 1.0: faster)")
    checks = [(name, c) for name, res in results for c in res.get("checks") or []]
    if checks:
        lines.append("")
        width = max(len(c["name"]) for _n, c in checks)
        for name, check in checks:
            lines.append(
                "%s  %s  %8.3f  %s"
                % (name, check["name"].ljust(width), check["value"], "ok" if check["ok"] else "MISSED")
            )
    return "\n".join(lines)


def run_script(script, quick, workdir=None, stream=None):
    """Run one benchmark script; return its parsed figures, or ``{"error": ...}``."""
    fd, path = tempfile.mkstemp(prefix="bench-", suffix=".json")
    os.close(fd)
    cmd = [sys.executable, script, "--json", path]
    if quick:
        cmd.append("--quick")
    if workdir:
        cmd += ["--workdir", workdir]
    try:
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=stream, stderr=stream, check=False)
        elapsed = time.monotonic() - start
        if proc.returncode != 0:
            return {"error": "%s exited %d after %.0fs" % (os.path.basename(script), proc.returncode, elapsed)}
        with open(path) as handle:
            text = handle.read()
        if not text.strip():
            return {"error": "%s wrote no figures (--json)" % os.path.basename(script)}
        return parse_figures(text, os.path.basename(script))
    except ParseError as exc:
        return {"error": str(exc)}
    finally:
        os.unlink(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        default=os.environ.get("JTS_BENCH_QUICK", "") not in ("", "0"),
        help="small data, one round: a smoke run in seconds (also JTS_BENCH_QUICK=1)",
    )
    parser.add_argument("--only", action="append", default=[], help="run only this benchmark (e.g. tier_migrate)")
    parser.add_argument("--workdir", default=None, help="passed on to every script (where images go)")
    parser.add_argument("--json", default=None, help="also write every figure to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    scripts = discover()
    if args.only:
        unknown = sorted(set(args.only) - {subject_of(s) for s in scripts})
        if unknown:
            parser.error(
                "no benchmark %s (there are: %s)" % (", ".join(unknown), ", ".join(subject_of(s) for s in scripts))
            )
        scripts = [s for s in scripts if subject_of(s) in args.only]
    if not scripts:
        print("run_all: no bench_*.py in %s" % HERE, file=sys.stderr)
        return 2
    results = []
    for script in scripts:
        name = subject_of(script)
        print("=== %s (%s)" % (name, "quick" if args.quick else "full"), flush=True)
        results.append((name, run_script(script, args.quick, args.workdir)))
    print()
    print(
        "All benchmarks (%s):"
        % ("quick: small data, one round; the targets mean something only in a full run" if args.quick else "full")
    )
    print(render(results))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({name: res for name, res in results}, handle, indent=1)
    failed = [name for name, res in results if res.get("error")]
    missed = [c["name"] for _n, res in results for c in res.get("checks") or [] if not c["ok"]]
    if failed:
        print("failed: %s" % ", ".join(failed), file=sys.stderr)
        return 1
    if missed and args.strict:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
