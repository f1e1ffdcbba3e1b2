#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nas_archive
short_description: Mirror directories to a NAS, or keep dated hard-linked snapshots with retention
version_added: 0.1.0
description:
  - Copies to a NAS with C(rsync), in one of two modes, without hanging on a NAS that is away and
    without deleting the archive by mistake.
  - "O(mode=mirror): O(destination) becomes a copy of the directory O(source) (archive mode, hard links,
    numeric ids, optionally ACLs and extended attributes; partial files kept in O(partial_dir) and all
    updates put in place at the end with C(--delay-updates)). Files that are gone from the source are
    deleted on the destination only with O(delete=true), and only after a dry run has counted them: the
    run is refused when the source is empty (an unmounted or wiped source must never wipe the archive)
    or when the deletions are above O(max_delete_percent) of the destination's entries."
  - "O(mode=snapshot): each run writes C(<destination>/<name>/<UTC time stamp>/), unchanged files
    hard-linked to the previous complete snapshot (C(--link-dest)), so a daily copy costs only what
    changed. The run writes into C(<stamp>.partial) and renames it when complete; only then is the
    C(latest) symlink replaced (atomically). An interrupted run is never pointed to and is removed by the
    next run."
  - "Snapshots have the mirror's guard: the run is refused (no snapshot made, retention not run) when the
    sources are empty (an unmounted source; nothing overrides this), or when, compared by a dry run with
    the newest snapshot that holds data, more than O(max_delete_percent) of its entries are gone or the
    sources hold more than O(max_delete_percent) fewer bytes (O(force_delete) allows this for one run)."
  - "A new snapshot is always named after the newest one: a clock behind the newest snapshot, or more than
    O(max_clock_jump_days) ahead of it, refuses the run with both times in the message; it is never obeyed."
  - Retention for snapshots keeps the newest O(keep_last) plus the newest snapshot of each of the newest
    O(keep_daily) days, O(keep_weekly) ISO weeks and O(keep_monthly) months that hold one, judged by the
    time stamp in the name; the newest complete snapshot, the newest one that holds data and the one
    C(latest) points to are never removed. A snapshot dated in the future is kept and not counted.
  - "Before anything: a TCP probe of O(nas_host) (when given), the destination mount in the kernel's
    mount table (O(destination_mount)) and a C(stat)/C(statvfs) of the destination in a child process with
    O(probe_timeout). A NAS that is away or does not answer gives a result with C(skipped=true) and the
    reason (or, with O(missing=fail), fails the task); nothing is changed and nothing blocks on a hard NFS mount. rsync itself runs under
    O(rsync_timeout)."
  - One run at a time per destination (a C(flock) lock in O(lock_dir)).
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - jts.tiered_storage.tier_destination
attributes:
  check_mode:
    support: full
    details: An rsync dry run says what would be transferred and deleted, and retention what it would remove; nothing changes.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - rsync 3.1 or later on the managed host
options:
  mode:
    description:
      - V(mirror) keeps O(destination) a copy of O(source).
      - V(snapshot) adds a dated, hard-linked copy of the sources under C(<destination>/<name>/) per run.
    type: str
    choices: [mirror, snapshot]
    required: true
  source:
    description:
      - The directory (its contents are copied) or single file to archive. Mutually exclusive with O(sources).
    type: path
  sources:
    description:
      - Several files and directories for O(mode=snapshot), copied with their full paths
        (C(/etc/fstab) lands in C(<snapshot>/etc/fstab)).
    type: list
    elements: path
  destination:
    description:
      - With O(mode=mirror), the directory that mirrors O(source); with O(mode=snapshot), the directory
        that holds the C(<name>) snapshot directory.
    type: path
    required: true
  name:
    description:
      - With O(mode=snapshot), the directory under O(destination) holding the snapshots. Default the
        base name of O(source); required with O(sources).
    type: str
  delete:
    description:
      - With O(mode=mirror), delete files on the destination that are gone from the source, within the
        delete guard (O(max_delete_percent), O(delete_grace_count)). Never when the source is empty.
    type: bool
    default: false
  max_delete_percent:
    description:
      - The largest share of the archive's previous copy that one run may lose; above it the run is refused
        and says so.
      - With O(mode=mirror) and O(delete), the share of the destination's entries that would be deleted.
      - With O(mode=snapshot), the share of the entries of the newest snapshot that holds data that are gone
        from the sources, and how many percent fewer bytes the sources hold than that snapshot.
    type: float
    default: 20
  delete_grace_count:
    description:
      - Up to this many lost entries are allowed whatever their share (for small trees, where one deleted
        file is a large percentage). Bytes have no grace.
    type: int
    default: 0
  force_delete:
    description:
      - Allow this run to lose more than O(max_delete_percent) (mirror - needs O(delete); snapshot - a
        snapshot that much smaller than the newest one with data).
      - Never allows mirroring or snapshotting an empty source.
    type: bool
    default: false
  exclude:
    description: rsync exclude patterns (C(--exclude)); excluded files on the destination are not deleted.
    type: list
    elements: str
    default: []
  hard_links:
    description: Keep hard links between source files (C(--hard-links)).
    type: bool
    default: true
  acls:
    description:
      - Copy POSIX ACLs (C(--acls)). Off by default because NFS exports often cannot store them (NFSv3
        needs the NFSACL side protocol, many NAS exports lack it); rsync then fails and the error says so.
    type: bool
    default: false
  xattrs:
    description:
      - Copy extended attributes (C(--xattrs)). Off by default because NFSv3 has no extended attributes at
        all (NFS 4.2 with Linux 5.9 or later has user xattrs).
    type: bool
    default: false
  numeric_ids:
    description: Keep user and group ids as numbers (C(--numeric-ids)); the NAS does not share the host's user names.
    type: bool
    default: true
  preserve_owner:
    description:
      - Keep owner and group (needs root on the host and an export without C(root_squash)); V(false) adds
        C(--no-owner --no-group).
    type: bool
    default: true
  one_file_system:
    description: Do not cross into other filesystems below the source (C(--one-file-system)).
    type: bool
    default: true
  delay_updates:
    description:
      - With O(mode=mirror), put all updated files in place at the end of the transfer (C(--delay-updates)),
        so an interrupted run leaves the mirror as it was instead of half-updated. Needs room for the
        changed files twice. Snapshots do not need it (they are written aside and renamed).
    type: bool
    default: true
  partial_dir:
    description:
      - Directory name (in each destination directory) for partially transferred files (C(--partial-dir)),
        so an interrupted transfer never leaves a truncated file under its real name. Empty turns it off.
    type: str
    default: .rsync-partial
  bwlimit:
    description: Bandwidth limit passed to rsync C(--bwlimit), such as V(50M) or a number of KiB/s.
    type: str
  verify:
    description:
      - After the copy, a checksum pass (C(rsync --checksum --dry-run)) must find no difference between the
        sources and the copy; a difference fails the run (and in O(mode=snapshot) the copy stays
        C(.partial), so C(latest) is not moved to it).
    type: bool
    default: false
  skip_unchanged:
    description:
      - With O(mode=snapshot), make no new snapshot when nothing changed since the newest one (the run
        reports C(unchanged=true) and C(changed=false)).
    type: bool
    default: false
  ignore_missing_sources:
    description:
      - With O(mode=snapshot), leave out sources that do not exist (with a warning) instead of failing.
        At least one must exist.
    type: bool
    default: false
  keep_last:
    description: Retention, O(mode=snapshot) - keep the newest this many snapshots. Every C(keep_*) at 0 turns retention off.
    type: int
    default: 0
  keep_daily:
    description: Retention - keep the newest snapshot of each of the newest this many days that hold one (UTC days).
    type: int
    default: 0
  keep_weekly:
    description: Retention - keep the newest snapshot of each of the newest this many ISO weeks that hold one.
    type: int
    default: 0
  keep_monthly:
    description: Retention - keep the newest snapshot of each of the newest this many months that hold one.
    type: int
    default: 0
  max_clock_jump_days:
    description:
      - With O(mode=snapshot), refuse a run whose clock is more than this many days after the newest snapshot
        (a clock that jumped ahead would name a snapshot that sorts after every later one). V(0) turns this
        check off, for one run after a real pause that long.
      - A clock behind the newest snapshot (more than a minute) is always refused; see the guide.
    type: int
    default: 366
  nas_host:
    description: The NAS's host name or address; when set, a TCP connection to O(nas_port) must open within O(probe_timeout).
    type: str
  nas_port:
    description: The TCP port probed on O(nas_host) (2049 is NFS).
    type: int
    default: 2049
  destination_fstype:
    description: When set, the filesystem type at O(destination_mount) must start with this, such as V(nfs).
    type: str
  source_mount:
    description: When set, every source must lie on the filesystem mounted here (an unmounted source is refused).
    type: path
  missing:
    default: skip
  rsync_timeout:
    description:
      - Seconds each rsync pass (and each removal of an old snapshot) may take; then it is killed and the
        run fails (an interrupted snapshot stays C(.partial) and is removed by the next run).
    type: float
    default: 3600
notes:
  - Unchanged snapshots share inodes, so changing a file in place in one snapshot changes it in all; treat them as read-only.
  - Sources are expected on local tiers; the destination may be a hard NFS mount that stops answering.
seealso:
  - name: nas_archive guide
    description: Modes, the delete guard, the snapshot protocol, retention and operations notes.
    link: https://github.com/jts/tiered_storage/blob/main/docs/nas_archive.md
"""

EXAMPLES = r"""
- name: Mirror the development datasets to the NAS, deletions within the guard
  jts.tiered_storage.nas_archive:
    mode: mirror
    source: /data/warm-storage/development/datasets
    destination: /mnt/synology/jts/development/datasets
    delete: true
    max_delete_percent: 20
    nas_host: synology.lan
    destination_mount: /mnt/synology
    destination_fstype: nfs

- name: Dated copies of the configuration, 7 last, 14 daily, 8 weekly, 12 monthly
  jts.tiered_storage.nas_archive:
    mode: snapshot
    name: configs
    sources: [/etc/fstab, /etc/jts]
    destination: /mnt/synology/jts/archives/configs
    ignore_missing_sources: true
    keep_last: 7
    keep_daily: 14
    keep_weekly: 8
    keep_monthly: 12
    verify: true
    destination_mount: /mnt/synology
  register: configs_archive

- name: Say when the NAS was away
  ansible.builtin.debug:
    msg: "{{ configs_archive.msg }}"
  when: configs_archive is skipped
"""

RETURN = r"""
skipped:
  description: True when the NAS or the destination mount was away or did not answer; nothing was done.
  returned: always
  type: bool
  sample: false
missing:
  description: When skipped, the end that is missing (C(nas_host), C(destination_mount), or C(source) for a mirror).
  returned: when skipped
  type: str
  sample: destination_mount
msg:
  description: Why the run was skipped, or a one-line summary.
  returned: always
  type: str
  sample: "mirror: 12 file(s), 3.0 MiB transferred, 0 deleted"
mode:
  description: The mode of the run.
  returned: success
  type: str
  sample: snapshot
sources:
  description: The sources as given.
  returned: success
  type: list
  elements: str
  sample: [/etc/fstab, /etc/jts]
destination:
  description: The destination as given.
  returned: success
  type: str
  sample: /mnt/synology/jts/archives/configs
files_transferred:
  description: Regular files sent (rsync C(--stats)); in check mode, files that would be.
  returned: success
  type: int
  sample: 12
bytes_transferred:
  description: Bytes of those files (rsync's C(Total transferred file size)).
  returned: success
  type: int
  sample: 3145728
files_deleted:
  description: Entries deleted on the destination (mirror with O(delete)); in check mode, that would be.
  returned: success
  type: int
  sample: 0
changes_count:
  description: Itemized changes (created, sent, linked, attributes changed).
  returned: success
  type: int
  sample: 13
changes:
  description: The itemized changes (C(item) is rsync's C(%i)), at most 1000.
  returned: success
  type: list
  elements: dict
  sample: [{"item": ">f+++++++++", "size": 1024, "path": "notebooks/a.ipynb"}]
deleted:
  description: The deleted paths (relative to the destination), at most 1000.
  returned: success
  type: list
  elements: str
  sample: ["old.csv"]
guard:
  description:
    - The guard's verdict - mirror with O(delete) - the delete guard; snapshot - the snapshot guard, which
      adds C(reference) (the newest snapshot that holds data, compared with), C(reference_entries),
      C(reference_bytes), C(source_bytes) and C(bytes_percent) (how much smaller the sources are).
    - In a snapshot run, C(dest_entries) and C(deletions) count the reference's entries.
  returned: success and failure, when O(delete=true) or O(mode=snapshot) and a snapshot holds data or the source is empty
  type: dict
  sample: {"ok": true, "deletions": 1, "dest_entries": 40, "source_entries": 39, "percent": 2.5, "limit_percent": 20.0, "grace_count": 0, "forced": false, "reason": ""}
clock:
  description:
    - Why the clock was refused - C(problem) (V(behind) the newest snapshot, or V(ahead) by more than
      O(max_clock_jump_days)), C(now), C(newest_snapshot) and C(days) between them.
  returned: failure, when the clock was refused
  type: dict
  sample: {"problem": "ahead", "now": "2036-01-01T03:00:00Z", "newest_snapshot": "2026-11-05T030000Z", "days": 3344}
snapshot:
  description: The snapshot made by this run (in check mode, the one that would be); null when none.
  returned: success
  type: str
  sample: /mnt/synology/jts/archives/configs/configs/2026-11-23T030000Z
latest:
  description: Where C(latest) points after the run.
  returned: success
  type: str
  sample: /mnt/synology/jts/archives/configs/configs/2026-11-23T030000Z
previous:
  description: The newest complete snapshot before this run (the C(--link-dest) reference).
  returned: success
  type: str
  sample: /mnt/synology/jts/archives/configs/configs/2026-11-22T030000Z
unchanged:
  description: With O(mode=snapshot), true when O(skip_unchanged) found nothing new and no snapshot was made.
  returned: when O(mode=snapshot)
  type: bool
  sample: false
retention_kept:
  description: Time stamps of the snapshots kept.
  returned: success
  type: list
  elements: str
  sample: ["2026-11-22T030000Z", "2026-11-23T030000Z"]
retention_removed:
  description: Time stamps of the snapshots removed by retention (in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: ["2026-10-01T030000Z"]
cleaned_incomplete:
  description: Leftovers of interrupted runs removed by this run (in check mode, that would be).
  returned: success
  type: list
  elements: str
  sample: ["2026-11-22T030000Z.partial"]
unknown_entries:
  description: Entries in the snapshot directory that are not snapshots (left alone).
  returned: when there are some
  type: list
  elements: str
  sample: ["notes.txt"]
verified:
  description: The verification result (null when O(verify) is off or in check mode).
  returned: success
  type: bool
  sample: true
verify_differences:
  description: Paths the checksum pass found different (at most 1000).
  returned: success and failure
  type: list
  elements: str
  sample: []
missing_sources:
  description: Sources left out because they do not exist (O(ignore_missing_sources)).
  returned: success
  type: list
  elements: str
  sample: []
rsync_seconds:
  description: Seconds spent in rsync.
  returned: success
  type: float
  sample: 1.42
locked:
  description: True when the run was refused because another run holds the lock.
  returned: failure
  type: bool
  sample: true
timed_out:
  description: True when rsync was killed after O(rsync_timeout).
  returned: failure
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import DEFAULT_LOCK_DIR, LockBusy
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive import NasArchiveError, build_policy
from ansible_collections.jts.tiered_storage.plugins.module_utils._nas_archive_run import Archiver, summary
from ansible_collections.jts.tiered_storage.plugins.module_utils._retention import DEFAULT_MAX_CLOCK_JUMP_DAYS
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

ARGUMENT_SPEC = dict(
    mode=dict(type="str", choices=["mirror", "snapshot"], required=True),
    source=dict(type="path"),
    sources=dict(type="list", elements="path"),
    destination=dict(type="path", required=True),
    name=dict(type="str"),
    delete=dict(type="bool", default=False),
    max_delete_percent=dict(type="float", default=20),
    delete_grace_count=dict(type="int", default=0),
    force_delete=dict(type="bool", default=False),
    exclude=dict(type="list", elements="str", default=[]),
    hard_links=dict(type="bool", default=True),
    acls=dict(type="bool", default=False),
    xattrs=dict(type="bool", default=False),
    numeric_ids=dict(type="bool", default=True),
    preserve_owner=dict(type="bool", default=True),
    one_file_system=dict(type="bool", default=True),
    delay_updates=dict(type="bool", default=True),
    partial_dir=dict(type="str", default=".rsync-partial"),
    bwlimit=dict(type="str"),
    verify=dict(type="bool", default=False),
    skip_unchanged=dict(type="bool", default=False),
    ignore_missing_sources=dict(type="bool", default=False),
    keep_last=dict(type="int", default=0),
    keep_daily=dict(type="int", default=0),
    keep_weekly=dict(type="int", default=0),
    keep_monthly=dict(type="int", default=0),
    max_clock_jump_days=dict(type="int", default=DEFAULT_MAX_CLOCK_JUMP_DAYS),
    nas_host=dict(type="str"),
    nas_port=dict(type="int", default=2049),
    destination_mount=dict(type="path"),
    destination_fstype=dict(type="str"),
    source_mount=dict(type="path"),
    require_mounted=dict(type="bool", default=True),
    missing=dict(type="str", choices=["fail", "skip"], default="skip"),
    probe_timeout=dict(type="float", default=10),
    rsync_timeout=dict(type="float", default=3600),
    lock_dir=dict(type="path", default=DEFAULT_LOCK_DIR),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        supports_check_mode=True,
        mutually_exclusive=[("source", "sources")],
        required_one_of=[("source", "sources")],
    )
    try:
        policy = build_policy(module.params)
    except NasArchiveError as exc:
        fail(module, exc)
    rsync_bin = module.get_bin_path("rsync", required=True)
    archiver = Archiver(policy, rsync_bin=rsync_bin, check_mode=module.check_mode)
    try:
        result = archiver.run()
    except Skipped as exc:
        for warning in archiver.warnings:
            module.warn(warning)
        module.exit_json(
            changed=False, skipped=True, msg=str(exc), missing=exc.missing, mode=policy.mode, destination=policy.dest
        )
    except LockBusy as exc:
        fail(module, exc, locked=True)
    except UnsafePath as exc:
        fail(module, JtsError("nas_archive: %s; nothing was done" % exc))
    except NasArchiveError as exc:
        for warning in archiver.warnings:
            module.warn(warning)
        fail(module, exc)
    except OSError as exc:
        # As before: "nas_archive: <path or nothing>: <reason>" (describe() would drop an empty path)
        fail(module, JtsError("nas_archive: %s: %s" % (exc.filename or "", exc.strerror or exc)))
    for warning in result.pop("warnings", []):
        module.warn(warning)
    result["msg"] = summary(result, module.check_mode)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
