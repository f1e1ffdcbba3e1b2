#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: storage_health
short_description: Check every storage tier's space, mounts, LVM, NAS and btrfs errors, never hanging
version_added: 0.1.0
description:
  - Checks each tier of O(tiers) and returns one picture of all of them, a list of alerts, an overall
    status (V(ok), V(warning), V(critical), V(unknown)) and a short human report.
  - "Space and inodes: every path of a tier (its O(tiers[].mounts) and O(tiers[].paths)) against the
    tier's used-percentage thresholds O(tiers[].warning) and O(tiers[].critical) (an alert at or
    above the threshold, computed as df does) and the optional minimum free space
    O(tiers[].free_warning) and O(tiers[].free_critical). A filesystem that reports no inode limit
    (btrfs) has no inode alert; one that reports a size of 0 is V(unknown); a missing path is V(critical)."
  - "Mounts: each of O(tiers[].mounts) must be mounted (V(critical) when not), with the expected
    filesystem type (prefix match, V(nfs) matches C(nfs4); V(critical) when another filesystem is
    there) and options (V(warning), reported as drift). Options the kernel never reports (C(_netdev),
    C(nofail), C(x-*), ext4's default C(data=ordered)) are not compared; NFS C(rsize) and C(wsize)
    negotiated down by the server are not drift."
  - "LVM (O(tiers[].vg)): the VG's free space against O(tiers[].vg_free_warning) and
    O(tiers[].vg_free_critical), and every snapshot's fill against O(tiers[].snapshot_warning) and
    O(tiers[].snapshot_critical); an invalid (filled-up) snapshot is V(critical). Read with
    one C(lvs --reportformat json) that also prints the VG's size and free space (C(vgs) only for a VG
    without LVs)."
  - "NAS (O(tiers[].nas_server)): a TCP connection to the NFS port within the probe time-out; a NAS
    that does not answer is V(critical), and its NFS mounts are then not touched at all (a stat on a
    dead hard mount would hang)."
  - "Every filesystem call runs in a forked child with a time-out (O(probe_timeout)), within the time
    left of O(timeout): the module returns within O(timeout) plus about a second even when the NAS
    vanished under a hard mount. A path that does not answer is V(unknown), and so are the other
    paths on the same mount (not probed again)."
  - "btrfs: C(btrfs device stats) of each btrfs mount of a tier; a non-zero error counter is an
    alert of O(tiers[].btrfs_error_severity). I/O counters of each mount's device come from
    C(/proc/diskstats) (no alert)."
  - "Sinks, each optional: the journal through C(logger) (O(journal)), a Prometheus node_exporter
    textfile written atomically (O(textfile)), a JSON webhook (O(webhook_url)). A sink that fails
    gives a warning; it never changes the status."
  - "Freshness (O(freshness)), the way sanoid --monitor and Nagios plugins see it: the age of the
    newest backup archive of each LV on the warm tier (O(freshness.backups)) and on the NAS
    (O(freshness.nas_backups)), of the newest dated snapshot of each NAS archive
    (O(freshness.nas_snapshots)) and of the last successful nightly run (O(freshness.last_run)),
    each against a warning and a critical age (an alert at or above). Ages come from the names
    (C(<lv>_<YYYYmmddTHHMMSSZ>.tar.zst) with its C(.sha256); C(<YYYY-mm-ddTHHMMSSZ>/) snapshot
    directories) and from C(run.last_success) of the lifecycle report's C(last-run.json), never
    from mtimes. Nothing found is the block's O(freshness.backups.missing) severity. Paths are
    opened from C(/) without following symlinks; every filesystem call runs in a forked child
    with a time-out. With the NAS away (O(freshness.nas_server) not answering), a mount not
    mounted or stalled, a symlink on the way, no permission or a state that is not root's, the
    check is V(unknown) with its reason."
  - The same checks run as the command C(jts-storage-check) for people and Nagios/Icinga (see
    docs/storage_health.md), installed by the lifecycle role.
  - The run fails only when O(fail_on) says so; by default it reports and succeeds.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: All checks run (they only read); the sinks are not written or sent.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root for the LVM and btrfs checks.
  - The module never reports a change; what the sinks did is in RV(sinks).
options:
  tiers:
    description:
      - The tiers to check, in report order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The tier's name (letters, digits, C(.), C(_), C(-)), as in alerts and metric labels.
        type: str
        required: true
      mounts:
        description:
          - Mounts the tier expects; each must be mounted, and its usage is checked.
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description: The mount point.
            type: path
            required: true
          fstype:
            description: Expected filesystem type (prefix match, V(nfs) matches C(nfs4)); unset means any.
            type: str
          options:
            description: Expected mount options, such as V(noatime) or V(compress=zstd:3).
            type: list
            elements: str
            default: []
          source:
            description: Expected source device or export, such as V(127.0.0.1:/srv/nas); unset means any.
            type: str
      paths:
        description: More paths whose space and inodes are checked (need not be mount points; directory mode).
        type: list
        elements: path
        default: []
      warning:
        description: Used percentage at or above which a path is V(warning), such as V(80) or V(80%).
        type: raw
        default: 80
      critical:
        description: Used percentage at or above which a path is V(critical); not below O(tiers[].warning).
        type: raw
        default: 90
      free_warning:
        description: Minimum free space below which a path is V(warning), a size such as V(50G) or a percentage such as V(10%).
        type: str
      free_critical:
        description: Minimum free space below which a path is V(critical), a size or a percentage.
        type: str
      inode_warning:
        description: Used inode percentage at or above which a path is V(warning).
        type: raw
        default: 80
      inode_critical:
        description: Used inode percentage at or above which a path is V(critical).
        type: raw
        default: 90
      vg:
        description: LVM volume group of the tier; its free space and its snapshots are checked.
        type: str
      vg_free_warning:
        description: Minimum VG free space (a size or a percentage of the VG) below which the tier is V(warning).
        type: str
      vg_free_critical:
        description: Minimum VG free space below which the tier is V(critical).
        type: str
      snapshot_warning:
        description: Snapshot fill percentage at or above which it is V(warning).
        type: raw
        default: 80
      snapshot_critical:
        description: Snapshot fill percentage at or above which it is V(critical). An invalid snapshot is always V(critical).
        type: raw
        default: 90
      nas_server:
        description: NAS host name or address; probed by TCP on O(tiers[].nas_port) before its mounts are touched.
        type: str
      nas_port:
        description: TCP port of the NAS probe (NFS).
        type: int
        default: 2049
      btrfs_stats:
        description: Read C(btrfs device stats) of the tier's btrfs mounts.
        type: bool
        default: true
      btrfs_error_severity:
        description: Severity of a non-zero btrfs device error counter.
        type: str
        choices: [warning, critical]
        default: warning
  timeout:
    description: Seconds for the whole check; what is not checked by then is V(unknown).
    type: float
    default: 10
  probe_timeout:
    description: Seconds for each probe (a statvfs, the NAS TCP connection, one LVM or btrfs command).
    type: float
    default: 3
  fail_on:
    description:
      - V(never) never fails on findings; V(warning) fails on warning, unknown or critical; V(unknown) on
        unknown or critical; V(critical) on critical only.
    type: str
    choices: [never, warning, unknown, critical]
    default: never
  journal:
    description: Send a summary line and one line per alert to the journal (syslog), priority by severity.
    type: bool
    default: false
  journal_identifier:
    description: Syslog identifier of the journal lines (C(journalctl -t)).
    type: str
    default: jts-storage-health
  textfile:
    description:
      - Path of a node_exporter textfile-collector file (must end in C(.prom)), written atomically
        (temporary file, fsync, rename). Unset writes none.
    type: path
  webhook_url:
    description:
      - V(https://) or V(http://) URL to POST a JSON summary to (C(host), C(status), C(alert_counts),
        C(alerts), C(report), C(checked_at)). Redirects are not followed (a 3xx answer is an error).
      - "Credentials in it (C(https://user:password@host/path), percent-encoded) are sent as an
        C(Authorization: Basic) header and removed from the URL requested; prefer V(https://) for them."
      - It may hold a token, so it is never logged or returned, and no error shows any part of it.
      - A URL that cannot be used (another scheme, a port that is not a number from 1 to 65535, no host,
        a space, control or non-ASCII character) is an error of this sink alone, a warning on every run
        (in check mode too); the checks, the report and the other sinks go on, as when sending fails.
    type: str
  webhook_timeout:
    description: Seconds for the webhook POST.
    type: float
    default: 5
  webhook_min_severity:
    description: The least overall status that is sent to the webhook (V(ok) sends every run).
    type: str
    choices: [ok, warning, unknown, critical]
    default: warning
  freshness:
    description:
      - Freshness checks of what the nightly run leaves behind; unset (or a block absent, or its list
        empty) checks none. Ages are sizes of time such as V(26h), V(7d), V(30m) (a bare number is days).
      - Their alerts have the tier C(freshness); their ages are in RV(perfdata) and in the textfile
        (C(jts_storage_backup_age_seconds), C(jts_storage_nas_backup_age_seconds),
        C(jts_storage_nas_snapshot_age_seconds), C(jts_storage_lifecycle_last_success_age_seconds),
        C(jts_storage_freshness_status) and the C(*_newest_timestamp_seconds) the ages count from).
    type: dict
    suboptions:
      nas_server:
        description:
          - The NAS probed (TCP, O(freshness.nas_port)) before any path of O(freshness.nas_backups)
            or O(freshness.nas_snapshots) is touched; when it does not answer they are V(unknown).
            A tier with the same server and port is probed only once.
        type: str
      nas_port:
        description: TCP port of the NAS probe (NFS).
        type: int
        default: 2049
      backups:
        description:
          - The backup archives on the warm tier, C(<directory>/<lv>/<lv>_<YYYYmmddTHHMMSSZ>.tar.zst),
            as the lifecycle backup step (M(jts.tiered_storage.snapshot_archive)) writes them. An archive
            counts only with its C(.sha256) beside it; temporaries and symlinks never count.
        type: dict
        suboptions:
          directory:
            description: The backup directory (C(lifecycle_backup_dir)); one sub-directory per LV.
            type: path
          mount:
            description: The warm tier's mount point; when it is not mounted the checks are V(unknown).
            type: path
          volumes:
            description: The LV names (C(lifecycle_backup_volumes)); empty checks none.
            type: list
            elements: str
            default: []
          warning:
            description: Age of the newest archive at or above which it is V(warning) (one night missed, with slack).
            type: str
            default: 26h
          critical:
            description: Age at or above which it is V(critical) (two nights missed).
            type: str
            default: 50h
          missing:
            description: Severity when the LV's directory does not exist or holds no archive.
            type: str
            choices: [ok, warning, unknown, critical]
            default: critical
      nas_backups:
        description:
          - The backup archives moved to the NAS by the migrate step (C(<directory>/<lv>/), the same names).
            Only archives older than the move's age go there, so the newest is normally that old plus
            up to a day or two; the defaults are 32 days 2 hours and 33 days 2 hours for a 30-day move.
        type: dict
        suboptions:
          directory:
            description: The move's destination on the NAS (C(<NAS mount>/<cold_tier_root>/archives/database)).
            type: path
          mount:
            description: The NAS mount point; when it is not mounted the checks are V(unknown).
            type: path
          volumes:
            description: The LV names; empty checks none.
            type: list
            elements: str
            default: []
          warning:
            description: Age of the newest archive on the NAS at or above which it is V(warning).
            type: str
            default: 770h
          critical:
            description: Age at or above which it is V(critical).
            type: str
            default: 794h
          missing:
            description: Severity when there is none (a host's first month has none).
            type: str
            choices: [ok, warning, unknown, critical]
            default: warning
      nas_snapshots:
        description:
          - The dated snapshots of M(jts.tiered_storage.nas_archive) (snapshot mode),
            C(<destination>/<name>/<YYYY-mm-ddTHHMMSSZ>/). C(.partial) directories, C(latest) and
            symlinks never count.
        type: dict
        suboptions:
          archives:
            description: Archive name to its destination, as in C(lifecycle_archive_snapshots).
            type: dict
            default: {}
          mount:
            description: The NAS mount point; when it is not mounted the checks are V(unknown).
            type: path
          warning:
            description: Age of the newest snapshot at or above which it is V(warning).
            type: str
            default: 26h
          critical:
            description: Age at or above which it is V(critical).
            type: str
            default: 50h
          missing:
            description: Severity when the archive has no snapshot (or no directory).
            type: str
            choices: [ok, warning, unknown, critical]
            default: critical
      last_run:
        description:
          - The last successful nightly run, C(run.last_success) of C(<state_dir>/last-run.json) (written by
            M(jts.tiered_storage.lifecycle_report)). The file is opened without following symlinks and must
            be a regular file of root that no one else may write, otherwise the check is V(unknown).
        type: dict
        suboptions:
          state_dir:
            description: The report's state directory (C(lifecycle_report_state_dir)).
            type: path
          warning:
            description: Age of the last success at or above which it is V(warning).
            type: str
            default: 26h
          critical:
            description: Age at or above which it is V(critical).
            type: str
            default: 50h
          missing:
            description: Severity when no run ever reported, or none succeeded yet.
            type: str
            choices: [ok, warning, unknown, critical]
            default: critical
      databases:
        description:
          - The database steps of the nightly run (C(pg_archive), C(clickhouse_tiering)) as its last runs left them in
            C(<state_dir>/last-run.json) (opened as for O(freshness.last_run)), one check each of the kind V(database), for the
            age of the step's last success against O(freshness.databases.warning) and O(freshness.databases.critical);
            a last run that failed or was skipped, a V(warning) with its reason; what it left pending (partitions past
            their retention still attached, parts past their rule still before their target volume), the
            O(freshness.databases.pending) severity. The report shows each step's last run, its figures and, for
            ClickHouse, each server's bytes and parts per disk and the age of the oldest part on hot (the step's gauges).
          - In the textfile C(jts_storage_database_step_last_success_age_seconds),
            C(jts_storage_database_step_last_success_timestamp_seconds) and C(jts_storage_database_step_pending) (label
            C(step)); in RV(perfdata) C(<step> last success age) and C(<step> pending).
        type: dict
        suboptions:
          state_dir:
            description: The report's state directory (C(lifecycle_report_state_dir)).
            type: path
          steps:
            description: The database steps the nightly run runs; empty checks none.
            type: list
            elements: str
            choices: [pg_archive, clickhouse_tiering]
            default: []
          warning:
            description: Age of the step's last success at or above which it is V(warning).
            type: str
            default: 26h
          critical:
            description: Age at or above which it is V(critical).
            type: str
            default: 50h
          missing:
            description: Severity when no run of the step was recorded yet, or none succeeded (a first night).
            type: str
            choices: [ok, warning, unknown, critical]
            default: warning
          pending:
            description: Severity when the step's last run left something pending (V(ok) shows it without an alert).
            type: str
            choices: [ok, warning, critical]
            default: warning
seealso:
  - module: jts.tiered_storage.lvm_snapshot_info
"""

EXAMPLES = r"""
- name: Check the three tiers and write the node_exporter textfile
  jts.tiered_storage.storage_health:
    tiers:
      - name: hot
        vg: vg_jts
        vg_free_warning: 5%
        mounts:
          - {path: /var/lib/postgresql, fstype: ext4, options: [noatime, commit=60]}
      - name: warm
        mounts:
          - {path: /data/warm-storage, fstype: btrfs, options: [compress=zstd:3, noatime]}
      - name: cold
        nas_server: nas.example.internal
        mounts:
          - {path: /mnt/synology, fstype: nfs, options: [hard, rsize=1048576, wsize=1048576]}
    textfile: /var/lib/prometheus/node-exporter/jts_storage.prom
    journal: true
  register: health

- name: Show the report
  ansible.builtin.debug:
    msg: "{{ health.report.splitlines() }}"

- name: Fail the play on critical findings, alerting a webhook
  jts.tiered_storage.storage_health:
    tiers:
      - {name: warm, warning: 70, critical: 85, paths: [/data/warm-storage]}
    fail_on: critical
    webhook_url: "{{ vault_alert_webhook }}"
"""

RETURN = r"""
status:
  description: Overall status, the worst of the alerts (ok < warning < unknown < critical).
  returned: always
  type: str
  sample: warning
exit_code:
  description: The status as a Nagios plugin exit code (0 ok, 1 warning, 2 critical, 3 unknown).
  returned: always
  type: int
  sample: 1
alerts:
  description: One entry per finding.
  returned: always
  type: list
  elements: dict
  contains:
    severity:
      description: V(warning), V(critical) or V(unknown).
      type: str
    tier:
      description: The tier's name.
      type: str
    path:
      description: The path, mount point, C(/dev/<vg>[/<lv>]) or C(server:port) concerned.
      type: str
    message:
      description: What was found.
      type: str
  sample:
    - {severity: warning, tier: warm, path: /data/warm-storage, message: "83.0% used (1.2 GiB free of 7.0 GiB), warning threshold 80%"}
alert_counts:
  description: Number of alerts by severity.
  returned: always
  type: dict
  sample: {critical: 0, warning: 1, unknown: 0}
tiers:
  description:
    - Per tier (by name) what was measured. C(status), C(alerts) (a count); C(mounts) (path, mounted,
      fstype, source, options, expected_fstype, expected_options, missing_options, drift); C(paths)
      (path, mount, fstype, source, status, size_bytes, used_bytes, free_bytes, used_ratio, inodes,
      inodes_used, inode_ratio, or error); C(lvm) (vg, size_bytes, free_bytes, free_ratio, snapshots
      with name, origin, size_bytes, fill_percent, valid, status; or error); C(nas) (server, port, up,
      message); C(btrfs) (mount, devices with their counters; or error); C(io) (per mount point, the
      /proc/diskstats counters of its device with read_bytes and written_bytes).
  returned: always
  type: dict
  sample:
    warm:
      status: ok
      alerts: 0
      mounts: [{path: /data/warm-storage, mounted: true, fstype: btrfs, drift: false, missing_options: []}]
      paths: [{path: /data/warm-storage, mount: /data/warm-storage, used_ratio: 0.12, free_bytes: 6012954214}]
      lvm: null
      nas: null
      btrfs: [{mount: /data/warm-storage, devices: {/dev/sda: {write_io_errs: 0, read_io_errs: 0}}}]
      io: {}
freshness:
  description:
    - The freshness checks. C(status) (the worst of them), C(nas) (the NAS probe used, or null) and
      C(checks), one per check with C(kind) (V(backup), V(nas_backup), V(nas_snapshot), V(last_run), V(database)),
      C(name) (the LV, the archive, or V(nightly)), C(path), C(mount), C(warning) and C(critical) (seconds),
      C(missing), C(status), C(age_seconds), C(newest) (the archive or snapshot name), C(newest_epoch),
      C(count), and C(error) when it could not be looked at. A V(database) check also has C(last_status)
      (its last run's status, null when none was recorded), C(message), C(pending) (how many), C(figures), C(gauges)
      and C(pending_severity).
  returned: always
  type: dict
  sample:
    status: ok
    nas: {server: nas.example.internal, port: 2049, up: true, message: ""}
    checks:
      - {kind: backup, name: postgres, path: /data/warm-storage/daily-backups/postgres, status: ok, age_seconds: 3600,
         newest: postgres_20261123T023000Z.tar.zst, newest_epoch: 1795401000, count: 7, warning: 93600, critical: 180000}
tier_order:
  description: The tier names in the order of O(tiers).
  returned: always
  type: list
  elements: str
  sample: [hot, warm, cold]
report:
  description: A short human report, one line per path, VG and NAS, then the tier's alerts.
  returned: always
  type: str
  sample: |-
    Storage health of jts-lab: WARNING (0 critical, 1 warning, 0 unknown) in 0.31s
    [warm] WARNING
      /data/warm-storage           btrfs   83.0% used, 1.2 GiB free of 7.0 GiB, inodes -
      WARNING  /data/warm-storage: 83.0% used (1.2 GiB free of 7.0 GiB), warning threshold 80%
status_line:
  description: The Nagios status line, with perfdata after C(|).
  returned: always
  type: str
  sample: "STORAGE OK - all 3 tier(s) ok | 'warm /data/warm-storage used'=12.1%;80;90;0;100 'duration'=0.2s;;;0;"
perfdata:
  description: "Nagios performance data: C('label'=value[UOM];warn;crit;min;max) items separated by spaces."
  returned: always
  type: str
  sample: "'warm /data/warm-storage used'=12.1%;80;90;0;100 'duration'=0.2s;;;0;"
host:
  description: The host name the report names.
  returned: always
  type: str
  sample: jts-lab
checked_at:
  description: Unix time of the check.
  returned: always
  type: int
  sample: 1795393200
duration_seconds:
  description: Seconds the checks took.
  returned: always
  type: float
  sample: 0.31
sinks:
  description:
    - What each configured sink did. C(textfile) (path, written, error or skipped), C(journal)
      (identifier, sent lines, error or skipped), C(webhook) (sent, http_status, error or skipped; never any part of the URL).
  returned: always
  type: dict
  sample: {textfile: {path: /var/lib/prometheus/node-exporter/jts_storage.prom, written: true}}
"""

import socket

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import (
    DATABASE_STEPS,
    MISSING,
    PENDING_SEVERITIES,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._freshness import DEFAULTS as FRESHNESS_DEFAULTS
from ansible_collections.jts.tiered_storage.plugins.module_utils._health import check_and_report
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_report import failure_message
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_sinks import deliver
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_tiers import (
    FAIL_ON,
    TIER_SPEC,
    HealthError,
    build_config,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import should_fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._process import ModuleRunner
from ansible_collections.jts.tiered_storage.plugins.module_utils._sinks import SinkError, build_sinks


def _ages(block):
    defaults = FRESHNESS_DEFAULTS[block]
    return dict(
        warning=dict(type="str", default=defaults["warning"]),
        critical=dict(type="str", default=defaults["critical"]),
        missing=dict(type="str", choices=list(MISSING), default=defaults["missing"]),
    )


def _archives(block):
    """The options of a block of backup archives (``backups``, ``nas_backups``)."""
    return dict(
        directory=dict(type="path"),
        mount=dict(type="path"),
        volumes=dict(type="list", elements="str", default=[]),
        **_ages(block),
    )


FRESHNESS_SPEC = dict(
    nas_server=dict(type="str"),
    nas_port=dict(type="int", default=2049),
    backups=dict(type="dict", options=_archives("backups")),
    nas_backups=dict(type="dict", options=_archives("nas_backups")),
    nas_snapshots=dict(
        type="dict",
        options=dict(archives=dict(type="dict", default={}), mount=dict(type="path"), **_ages("nas_snapshots")),
    ),
    last_run=dict(type="dict", options=dict(state_dir=dict(type="path"), **_ages("last_run"))),
    databases=dict(
        type="dict",
        options=dict(
            state_dir=dict(type="path"),
            steps=dict(type="list", elements="str", choices=list(DATABASE_STEPS), default=[]),
            pending=dict(
                type="str", choices=list(PENDING_SEVERITIES), default=FRESHNESS_DEFAULTS["databases"]["pending"]
            ),
            **_ages("databases"),
        ),
    ),
)
ARGUMENT_SPEC = dict(
    tiers=dict(type="list", elements="dict", required=True, options=TIER_SPEC),
    timeout=dict(type="float", default=10),
    probe_timeout=dict(type="float", default=3),
    fail_on=dict(type="str", choices=list(FAIL_ON), default="never"),
    journal=dict(type="bool", default=False),
    journal_identifier=dict(type="str", default="jts-storage-health"),
    textfile=dict(type="path"),
    webhook_url=dict(type="str", no_log=True),
    webhook_timeout=dict(type="float", default=5),
    webhook_min_severity=dict(type="str", choices=["ok", "warning", "unknown", "critical"], default="warning"),
    freshness=dict(type="dict", options=FRESHNESS_SPEC),
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        config = build_config(params)
        sinks = build_sinks(params)
    except (HealthError, SinkError) as exc:
        fail(module, exc)
    runner = ModuleRunner(module)
    result = check_and_report(config, runner, runner.which, socket.gethostname())
    result.pop("thresholds", None)
    result["sinks"] = deliver(result, sinks, runner, runner.which, result["host"], check_mode=module.check_mode)
    for name, entry in sorted(result["sinks"].items()):
        if entry.get("error"):
            module.warn("storage_health sink %s: %s" % (name, entry["error"]))
    result["changed"] = False
    if should_fail(result["status"], config["fail_on"]):
        fail(module, JtsError(failure_message(result, config["fail_on"])), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
