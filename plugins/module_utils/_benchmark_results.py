# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's results: each test's result, saved runs read back and written, the baseline comparison.

User: ``_benchmark_run.Benchmark`` (``pending_results`` before the tests, the rest after them). Each run is ``<state_dir>/<run id>.json``
in a directory of root's alone (``_tree.open_private_dir``), written under a temporary name,
flushed and renamed. The baseline of a result is the same test of the first saved run with the
same tool and settings (``_benchmark.find_baselines``); a figure that moved by more than the
threshold is called worse or better (``_benchmark.compare``).

Standard library only, Python 3.8.
"""

from __future__ import annotations

import json
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import (
    compare,
    find_baselines,
    result_key,
    signature,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    UnsafePath,
    open_private_dir,
    replace_private,
)


def history(state_dir, check, warn):
    """The saved runs, oldest first; unreadable files are reported (``warn``) and skipped."""
    try:
        fd = open_private_dir(state_dir, create=not check)
    except FileNotFoundError:
        return []
    except UnsafePath as exc:
        raise JtsError("state_dir %s refused: %s" % (state_dir, exc)) from None
    runs = []
    try:
        for name in sorted(os.listdir(fd)):
            if name.startswith(".") or not name.endswith(".json"):
                continue
            try:
                file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                with os.fdopen(file_fd, "rb") as handle:
                    run = json.loads(handle.read(16 << 20).decode("utf-8"))
                run["started_ts"] = float(run["started_ts"])
                runs.append(run)
            except (OSError, ValueError, KeyError, TypeError) as exc:
                warn("%s/%s is not a benchmark result (%s); ignored" % (state_dir, name, exc))
    finally:
        os.close(fd)
    runs.sort(key=lambda r: (r["started_ts"], str(r.get("run_id"))))
    return runs


def save(state_dir, run_id, run):
    """Write ``run`` as ``<state_dir>/<run_id>.json`` (temporary name, fsync, rename); its path."""
    name = "%s.json" % run_id
    replace_private(state_dir, name, json.dumps(run, indent=1, sort_keys=True).encode("utf-8"))
    return os.path.join(state_dir, name)


def compare_with_baselines(runs, ok, threshold):
    """``(comparisons, worse)``: per result key its baseline run and changes; the worse figures as lines."""
    baselines = find_baselines(runs, ok)
    comparisons = {}
    worse = []
    for r in ok:
        key = result_key(r)
        if key in baselines:
            run, old = baselines[key]
            changes = compare(r, old, threshold)
            comparisons[key] = {"baseline_run": run.get("run_id"), "changes": changes}
            for c in changes:
                if c["verdict"] == "worse":
                    worse.append(
                        "%s %s %+.1f %% (%s is better)"
                        % (key, c["label"], c["change_percent"], "higher" if c["higher_is_better"] else "lower")
                    )
        else:
            comparisons[key] = {"baseline_run": None, "changes": []}
    return comparisons, worse


def pending_results(targets, tool, settings):
    """Every (tier, name, test) as a pending result, in run order."""
    results = {}
    order = []
    for t in targets:
        for test in t["tests"]:
            key = (t["tier"], t["name"], test)
            order.append(key)
            results[key] = {
                "tier": t["tier"],
                "name": t["name"],
                "mount": t["mount"],
                "directory": t["directory"],
                "fstype": None,
                "test": test,
                "tool": tool,
                "status": "pending",
                "reason": "",
                "signature": signature(test, tool, settings),
                "figures": {},
            }
    return results, order


__all__ = ["compare_with_baselines", "history", "pending_results", "save"]
