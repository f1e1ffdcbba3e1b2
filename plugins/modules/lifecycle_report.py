#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lifecycle_report
short_description: Record the nightly lifecycle run's outcome per step, for metrics, the journal and a webhook
version_added: 0.1.0
description:
  - "Takes what each step of a lifecycle run did (status, times, figures) and merges it into the
    run state kept on the host in O(state_dir): a step's last success survives the nights it failed
    or was skipped."
  - "From that state it writes the node_exporter textfile O(textfile) atomically (temporary file and
    rename in the same directory; metrics C(jts_lifecycle_run_*) and C(jts_lifecycle_step_*), base
    units), one journal line per step and one for the run (C(logger -t) O(journal_identifier);
    C(err) for a failed or skipped step), and calls O(webhook_url) as O(webhook_on) says."
  - "A step that did nothing because its tier was missing is C(skipped): not a success, its last
    success time is not refreshed, and the run counts as failed."
  - "The C(OnFailure=) handler C(jts-lifecycle-report --unit-failed) reads the same state: a run
    whose O(invocation_id) is already recorded is not reported twice."
  - The role jts.tiered_storage.lifecycle calls this module at the end of every run, also when a step
    or the play failed.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Nothing is written or sent; the diff shows the textfile that would be written.
  diff_mode:
    support: full
    details: The textfile before and after.
  platform:
    platforms: posix
notes:
  - Needs root (the state directory must belong to the user running the module and be writable by it alone).
  - The module reports a change when the textfile's content changes, which is every run that wrote one.
options:
  steps:
    description: What each step of this run did, in the order they ran.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The step's name (letters, digits, C(_)).
        type: str
        required: true
      status:
        description: How the step ended.
        type: str
        required: true
        choices: [success, failed, skipped]
      started:
        description: Unix time the step started.
        type: float
        required: true
      ended:
        description: Unix time the step ended.
        type: float
        required: true
      reason:
        description: Why it failed or was skipped (the state, the journal and the webhook call it C(message)).
        type: str
        default: ""
      figures:
        description:
          - "What the step handled, as C(files_<action>) and C(bytes_<action>) integers (for example
            C(files_moved), C(bytes_moved), C(files_failed)); exported as C(jts_lifecycle_step_files) and
            C(jts_lifecycle_step_bytes) with the label C(action)."
          - A C(files_failed) above zero makes a run with O(webhook_on=warning) call the webhook.
        type: dict
        default: {}
      gauges:
        description:
          - "What the step measured, each C({metric, labels, value}) with a value of zero or more; the step's
            last run replaces its gauges (a run that measured nothing exports none). C(metric) is one of
            C(clickhouse_disk_bytes) and C(clickhouse_disk_parts) (labels C(server) and C(disk)) and
            C(clickhouse_hot_oldest_part_timestamp_seconds) (label C(server)), exported with the prefix
            C(jts_lifecycle_)."
          - Any other metric, a missing or extra label, or the same metric and labels twice is an error.
        type: list
        elements: dict
        default: []
  run_id:
    description: This run's identifier (in the state and the webhook's payload).
    type: str
    required: true
  started:
    description: Unix time the run started.
    type: float
    required: true
  failure:
    description: Why the run failed outside any step (the run lock, the play); empty when it did not.
    type: str
    default: ""
  invocation_id:
    description:
      - The systemd invocation ID of C(jts-lifecycle.service) running this play (C($INVOCATION_ID)), so
        that its C(OnFailure=) handler knows the run already reported itself. Empty outside systemd.
    type: str
    default: ""
  state_dir:
    description: Root-only directory of the run state (C(last-run.json)); created with mode C(0700).
    type: path
    default: /var/lib/jts/lifecycle
  textfile:
    description: The node_exporter textfile collector file (ends in C(.prom)); empty for none.
    type: str
    default: ""
  journal:
    description: Send one line per step and one for the run to the journal (C(logger)).
    type: bool
    default: true
  journal_identifier:
    description: The journal's C(SYSLOG_IDENTIFIER) of those lines.
    type: str
    default: jts-lifecycle
  webhook_url:
    description:
      - URL that gets a JSON POST (C(source), C(host), C(status), C(warnings), C(message), C(run), C(steps));
        empty for none. User information in it becomes a Basic C(Authorization) header; it never appears
        in output.
    type: str
    default: ""
  webhook_on:
    description:
      - When the webhook is called. C(failure) when the run failed (a step failed or was skipped, or the
        run failed outside the steps); C(warning) also when a step left files behind (C(files_failed));
        C(always) after every run; C(never).
    type: str
    choices: [never, failure, warning, always]
    default: failure
  webhook_timeout:
    description: Seconds to wait for the webhook.
    type: float
    default: 5
  host:
    description: The host name in the webhook's payload (default the host's FQDN).
    type: str
"""

EXAMPLES = r"""
- name: Record the run's outcome
  jts.tiered_storage.lifecycle_report:
    run_id: "{{ run_id }}"
    started: "{{ run_started }}"
    steps:
      - name: backup
        status: success
        started: 1795000000.0
        ended: 1795000120.5
        figures: {files_archived: 3, bytes_archived: 104857600}
      - name: archive
        status: skipped
        started: 1795000121.0
        ended: 1795000122.0
        reason: /mnt/synology is not mounted
    textfile: /var/lib/prometheus/node-exporter/jts_lifecycle.prom
    webhook_url: "{{ alert_webhook_url }}"
"""

RETURN = r"""
success:
  description: Whether the run succeeded (every step C(success) and no O(failure)).
  returned: always
  type: bool
  sample: false
message:
  description: The run in one line.
  returned: always
  type: str
  sample: "archive skipped: /mnt/synology is not mounted"
state:
  description: The run state after this run (what C(last-run.json) holds).
  returned: always
  type: dict
  sample:
    version: 1
    run: {id: "20261128T020000-1a2b", success: false, last_success: 1795000000.0, source: playbook}
    steps:
      backup: {status: success, duration: 120.5, figures: {files_archived: 3}, gauges: [], last_success: 1795000120.5}
sinks:
  description: What each sink did (C(written), C(sent), C(skipped) with why, or C(error)).
  returned: always
  type: dict
  sample:
    state: {path: /var/lib/jts/lifecycle/last-run.json, written: true}
    textfile: {path: /var/lib/prometheus/node-exporter/jts_lifecycle.prom, written: true}
    journal: {identifier: jts-lifecycle, sent: 3}
    webhook: {sent: true, http_status: 200}
warnings_found:
  description: Whether a step left files behind (C(files_failed) above zero).
  returned: always
  type: bool
  sample: false
"""

import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report import (
    STATUSES,
    WEBHOOK_ON,
    ReportError,
    has_warnings,
    merge_run,
    normalise_step,
    render_textfile,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._run_report_io import (
    build_settings,
    deliver,
    load_state,
    read_textfile,
    sink_errors,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

STEP_SPEC = dict(
    name=dict(type="str", required=True),
    status=dict(type="str", required=True, choices=list(STATUSES)),
    started=dict(type="float", required=True),
    ended=dict(type="float", required=True),
    reason=dict(type="str", default=""),
    figures=dict(type="dict", default={}),
    gauges=dict(type="list", elements="dict", default=[]),
)
ARGUMENT_SPEC = dict(
    steps=dict(type="list", elements="dict", required=True, options=STEP_SPEC),
    run_id=dict(type="str", required=True),
    started=dict(type="float", required=True),
    failure=dict(type="str", default=""),
    invocation_id=dict(type="str", default=""),
    state_dir=dict(type="path", default="/var/lib/jts/lifecycle"),
    textfile=dict(type="str", default=""),
    journal=dict(type="bool", default=True),
    journal_identifier=dict(type="str", default="jts-lifecycle"),
    webhook_url=dict(type="str", default="", no_log=True),
    webhook_on=dict(type="str", choices=list(WEBHOOK_ON), default="failure"),
    webhook_timeout=dict(type="float", default=5),
    host=dict(type="str"),
)


def _runner(module):
    def run(argv, timeout):
        return module.run_command(argv, check_rc=False)

    return run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    p = module.params
    try:
        sinks = build_settings(p)
        steps = [normalise_step(step) for step in p["steps"]]
        previous, warning = load_state(p["state_dir"])
        if warning:
            module.warn(warning)
        ended = max([p["started"], round(time.time(), 3)] + [s["ended"] for s in steps])
        state = merge_run(previous, steps, p["run_id"], p["invocation_id"], p["started"], ended, p["failure"] or None)
    except (ReportError, UnsafePath) as exc:
        fail(module, exc, prefix="lifecycle_report")
    before = read_textfile(sinks["textfile"]) if sinks["textfile"] else ""
    after = render_textfile(state) if sinks["textfile"] else ""
    report = deliver(
        state, sinks, _runner(module), module.get_bin_path, p["host"] or socket.getfqdn(), module.check_mode
    )
    result = dict(
        changed=before != after,
        success=state["run"]["success"],
        message=state["run"]["message"],
        state=state,
        sinks=report,
        warnings_found=has_warnings(state),
    )
    if module._diff and sinks["textfile"]:
        result["diff"] = dict(
            before=before, after=after, before_header=sinks["textfile"], after_header=sinks["textfile"]
        )
    errors = sink_errors(report)
    if report["state"].get("error"):
        fail(module, JtsError("; ".join(errors)), prefix="lifecycle_report", **result)
    for error in errors:
        module.warn(error)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
