# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nightly run's outcome: what each step did, merged into the last known state, and rendered.

Pure functions, standard library only, importable on Python 3.8. The state is a JSON document
kept on the host (``_run_report_io``); each run merges its steps into it, so that a step's last
success survives the nights it failed or was skipped, and the ``OnFailure=`` handler can mark a
run that never reported (``ansible-playbook`` killed) without knowing its steps.

State::

    {"version": 1,
     "run": {"id", "invocation_id", "started", "ended", "success", "message", "source",
             "last_success"},
     "steps": {"<step>": {"status", "message", "started", "ended", "duration", "figures",
                          "gauges", "last_success"}}}

``figures`` count what a step handled (``files_<action>``, ``bytes_<action>``); ``gauges`` are
what it measured, each one of ``GAUGES`` with its labels (``[{"metric", "labels", "value"}]``, the
ClickHouse disks' bytes and the age of the oldest part on hot): a step's last run replaces them, so
a run that measured nothing (skipped, failed early) exports none rather than stale figures.

Statuses: ``success``; ``failed``; ``skipped`` (the step could not do its work because its tier
was missing: never a success, its last success is not refreshed).
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._textfile import render

STATE_VERSION = 1
STATUSES = ("success", "failed", "skipped")
WEBHOOK_ON = ("never", "failure", "warning", "always")
METRIC_PREFIX = "jts_lifecycle_"
# syslog priorities (logger -p user.<priority>)
PRIORITIES = {"success": "info", "failed": "err", "skipped": "err"}
FIGURE_KINDS = ("files", "bytes")

# name -> (type, help)
METRICS = (
    ("run_success", "gauge", "1 when the last nightly run finished with every step successful, else 0."),
    ("run_timestamp_seconds", "gauge", "Unix time the last nightly run ended (or was found dead by OnFailure=)."),
    ("run_last_success_timestamp_seconds", "gauge", "Unix time of the last fully successful run (0: never)."),
    ("run_duration_seconds", "gauge", "Seconds the last nightly run took (absent when it never reported)."),
    (
        "step_success",
        "gauge",
        "1 when the step succeeded in the last run that ran it; 0 when it failed or was skipped.",
    ),
    ("step_skipped", "gauge", "1 when the step did nothing in its last run because its tier was missing."),
    ("step_last_success_timestamp_seconds", "gauge", "Unix time the step last succeeded (0: never)."),
    ("step_duration_seconds", "gauge", "Seconds the step took in its last run."),
    ("step_files", "gauge", "Files (or archives) the step handled in its last run, by action."),
    ("step_bytes", "gauge", "Bytes the step handled in its last run, by action."),
)
# What steps measured (``gauges``): name -> (help, label names). Exported after METRICS.
GAUGES = {
    "clickhouse_disk_bytes": (
        "Bytes of a ClickHouse server's active parts on one of its disks (clickhouse_tiering's last run).",
        ("server", "disk"),
    ),
    "clickhouse_disk_parts": (
        "Active parts of a ClickHouse server on one of its disks (clickhouse_tiering's last run).",
        ("server", "disk"),
    ),
    "clickhouse_hot_oldest_part_timestamp_seconds": (
        "Unix time of the newest row of the oldest part on the hot volume of a server's tiered tables"
        " (its age is time() minus this; clickhouse_tiering's last run).",
        ("server",),
    ),
}


class ReportError(JtsError, ValueError):
    """An outcome or a state that cannot be read; the message says which field."""


def empty_state():
    return {"version": STATE_VERSION, "run": {"last_success": None}, "steps": {}}


def _number(value, what):
    if isinstance(value, bool):
        raise ReportError("%s: %r is not a number" % (what, value))
    if not isinstance(value, (int, float)):
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise ReportError("%s: %r is not a number" % (what, value)) from None
    if value != value or value < 0 or value == float("inf"):  # NaN, negative or infinite
        raise ReportError("%s: %r is not a finite number of zero or more" % (what, value))
    return value


def normalise_figures(figures, step):
    """``{"files_moved": 3, "bytes_moved": 10}`` checked: ``<files|bytes>_<action>`` -> int."""
    out = {}
    for key, value in sorted((figures or {}).items()):
        kind, _sep, action = str(key).partition("_")
        if kind not in FIGURE_KINDS or not action or not action.replace("_", "").isalnum():
            raise ReportError(
                "steps[%s].figures: %r is not files_<action> or bytes_<action> (e.g. files_moved)" % (step, key)
            )
        out[key] = int(_number(value, "steps[%s].figures.%s" % (step, key)))
    return out


def normalise_gauges(gauges, step):
    """``[{"metric", "labels", "value"}]`` checked against ``GAUGES``, sorted; one sample per labels
    (the same sample twice is kept once; two values for one metric and labels are refused)."""
    out = {}
    for index, gauge in enumerate(gauges or []):
        what = "steps[%s].gauges[%d]" % (step, index)
        if not isinstance(gauge, dict):
            raise ReportError("%s: %r is not a dict of metric, labels and value" % (what, gauge))
        metric = gauge.get("metric")
        if metric not in GAUGES:
            raise ReportError("%s.metric: %r is not one of %s" % (what, metric, ", ".join(sorted(GAUGES))))
        names = GAUGES[metric][1]
        labels = gauge.get("labels") or {}
        if not isinstance(labels, dict) or sorted(labels) != sorted(names):
            raise ReportError("%s.labels: %s needs exactly the labels %s" % (what, metric, ", ".join(names)))
        values = tuple(str(labels[name]) for name in names)
        if not all(values):
            raise ReportError("%s.labels: %s has an empty label value" % (what, metric))
        key = (metric, values)
        value = _number(gauge.get("value"), what + ".value")
        if key in out and out[key] != value:  # the same twice (two entries for one server) is one sample
            raise ReportError("%s: a second %s for %s, of another value" % (what, metric, dict(zip(names, values))))
        out[key] = value
    return [
        {"metric": metric, "labels": dict(zip(GAUGES[metric][1], values)), "value": value}
        for (metric, values), value in sorted(out.items())
    ]


def normalise_step(step):
    """One step's outcome as the playbook gives it (``reason``: why it failed or was skipped), checked."""
    name = step.get("name")
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ReportError("steps: a step needs a name of letters, digits and _ (got %r)" % (name,))
    status = step.get("status")
    if status not in STATUSES:
        raise ReportError("steps[%s].status: %r is not one of %s" % (name, status, ", ".join(STATUSES)))
    started = _number(step.get("started"), "steps[%s].started" % name)
    ended = _number(step.get("ended"), "steps[%s].ended" % name)
    if ended < started:
        raise ReportError("steps[%s]: ended (%s) is before started (%s)" % (name, ended, started))
    return {
        "name": name,
        "status": status,
        "message": str(step.get("reason") or ""),
        "started": started,
        "ended": ended,
        "duration": round(ended - started, 3),
        "figures": normalise_figures(step.get("figures"), name),
        "gauges": normalise_gauges(step.get("gauges"), name),
    }


def check_state(state):
    """A state read from disk, or a fresh one when it is not ours; raises on a corrupt one."""
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise ReportError("not a version %d run state" % STATE_VERSION)
    if not isinstance(state.get("run"), dict) or not isinstance(state.get("steps"), dict):
        raise ReportError("run state without run and steps")
    return state


def merge_run(previous, steps, run_id, invocation_id, started, ended, failure=None):
    """The state after a run that reported ``steps`` (normalised), on top of ``previous``.

    ``failure``: a message when the run failed outside any step (the run lock, the play).
    Steps this run did not run keep their last entry.
    """
    state = {"version": STATE_VERSION, "run": {}, "steps": dict(previous.get("steps") or {})}
    for step in steps:
        before = state["steps"].get(step["name"]) or {}
        entry = {k: step[k] for k in ("status", "message", "started", "ended", "duration", "figures", "gauges")}
        entry["last_success"] = step["ended"] if step["status"] == "success" else before.get("last_success")
        state["steps"][step["name"]] = entry
    problems = [
        "%s %s%s" % (s["name"], s["status"], ": " + s["message"] if s["message"] else "")
        for s in steps
        if s["status"] != "success"
    ]
    if failure:
        problems.append(failure)
    success = not problems
    state["run"] = {
        "id": run_id,
        "invocation_id": invocation_id or None,
        "started": started,
        "ended": ended,
        "success": success,
        "message": "; ".join(problems) if problems else "every step succeeded",
        "source": "playbook",
        "last_success": ended if success else (previous.get("run") or {}).get("last_success"),
        "steps": [s["name"] for s in steps],
    }
    return state


def merge_dead_run(previous, invocation_id, ended, message):
    """The state after a run that died before it reported (the ``OnFailure=`` handler)."""
    before = previous.get("run") or {}
    state = {"version": STATE_VERSION, "run": {}, "steps": dict(previous.get("steps") or {})}
    state["run"] = {
        "id": None,
        "invocation_id": invocation_id or None,
        "started": None,
        "ended": ended,
        "success": False,
        "message": message,
        "source": "on-failure",
        "last_success": before.get("last_success"),
        "steps": [],
    }
    return state


def reported_by_playbook(state, invocation_id):
    """Whether the run of ``invocation_id`` already reported itself (its failure was sent then)."""
    run = state.get("run") or {}
    return bool(invocation_id) and run.get("invocation_id") == invocation_id and run.get("source") == "playbook"


# ----------------------------------------------------------------------------------------------
# Renderings
# ----------------------------------------------------------------------------------------------


def metric_samples(state):
    """``{metric: [(labels, value)]}`` of a state."""
    samples = {name: [] for name, _t, _h in METRICS}
    samples.update((name, []) for name in GAUGES)
    run = state["run"]
    if run.get("ended") is not None:
        samples["run_success"].append(((), bool(run.get("success"))))
        samples["run_timestamp_seconds"].append(((), run["ended"]))
        if run.get("started") is not None:
            samples["run_duration_seconds"].append(((), round(run["ended"] - run["started"], 3)))
    samples["run_last_success_timestamp_seconds"].append(((), run.get("last_success") or 0))
    for name in sorted(state["steps"]):
        step = state["steps"][name]
        label = (("step", name),)
        samples["step_success"].append((label, step["status"] == "success"))
        samples["step_skipped"].append((label, step["status"] == "skipped"))
        samples["step_last_success_timestamp_seconds"].append((label, step.get("last_success") or 0))
        samples["step_duration_seconds"].append((label, step.get("duration") or 0))
        for key, value in sorted((step.get("figures") or {}).items()):
            kind, _sep, action = key.partition("_")
            samples["step_" + kind].append(((*label, ("action", action)), value))
        for gauge in exportable_gauges(step.get("gauges"), name):
            names = GAUGES[gauge["metric"]][1]
            samples[gauge["metric"]].append((tuple((n, gauge["labels"][n]) for n in names), gauge["value"]))
    return samples


def exportable_gauges(gauges, step):
    """The stored gauges of ``step`` that check out, each sample once (the first); the others (a
    metric of a later version, a state edited by hand) are left out rather than failing every later
    report, and a sample stored twice is not exported twice (node_exporter would refuse the file)."""
    if not isinstance(gauges, list):
        return []
    good = {}
    for gauge in gauges:
        try:
            checked = normalise_gauges([gauge], step)
        except ReportError:
            continue
        for sample in checked:
            good.setdefault((sample["metric"], tuple(sorted(sample["labels"].items()))), sample)
    return list(good.values())


def render_textfile(state):
    """node_exporter's textfile format: HELP and TYPE once per family, then its samples."""
    families = METRICS + tuple((name, "gauge", text) for name, (text, _labels) in GAUGES.items())
    return render(METRIC_PREFIX, families, metric_samples(state), whole_floats_as_int=True)


def _figures_text(figures):
    return ", ".join("%s=%s" % (k, v) for k, v in sorted(figures.items()))


def journal_messages(state):
    """``[(priority, message)]``: one line per step of the run, then the run's line."""
    run = state["run"]
    messages = []
    for name in run.get("steps") or []:
        step = state["steps"][name]
        text = "step %s %s in %.1f s" % (name, step["status"].upper(), step["duration"])
        details = [d for d in (step["message"], _figures_text(step["figures"])) if d]
        if details:
            text += ": " + "; ".join(details)
        messages.append((PRIORITIES[step["status"]], text))
    status = "success" if run["success"] else "failed"
    messages.append((PRIORITIES[status], "lifecycle run %s: %s" % (status.upper(), run["message"])))
    return messages


def has_warnings(state):
    """A run that succeeded but left files behind (``files_failed`` > 0 in a step)."""
    run = state["run"]
    return any((state["steps"][n].get("figures") or {}).get("files_failed", 0) > 0 for n in run.get("steps") or [])


def webhook_wanted(state, webhook_on):
    if webhook_on == "never":
        return False
    if webhook_on == "always" or not state["run"]["success"]:
        return True
    return webhook_on == "warning" and has_warnings(state)


def webhook_payload(state, host):
    run = state["run"]
    return {
        "source": "jts-lifecycle",
        "host": host,
        "status": "success" if run["success"] else "failed",
        "warnings": has_warnings(state),
        "message": run["message"],
        "run": {k: run.get(k) for k in ("id", "invocation_id", "started", "ended", "source", "last_success")},
        "steps": [dict(state["steps"][n], name=n) for n in run.get("steps") or []],
    }
