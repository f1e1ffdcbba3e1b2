#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tier_migrate
short_description: Move or copy aged files between storage tiers, verified and undoable
version_added: 0.1.0
description:
  - Selects files under O(source) by age, name, size and per-run caps, and moves (or copies) them
    to the same relative paths under O(destination), optionally compressed with C(zstd) or C(gzip).
  - "Preflight before anything moves: both ends exist and answer within O(probe_timeout) (a stalled
    NFS mount is refused, not waited on); the destination is a mounted filesystem (O(require_mounted));
    the trees do not overlap in either direction, also through symlinks or bind mounts (devices and
    inodes are compared); the destination has room for the selection plus O(min_free)."
  - "Per file: the copy goes to a temporary name in its destination directory (made in the kernel,
    C(copy_file_range) or C(sendfile), when uncompressed) and the source's SHA-256 is taken (the
    journal keeps it for undo); owner, group, mode and times are kept; the destination filesystem is
    flushed (C(syncfs), once per batch); the copy is read back from the disk after its pages were
    dropped from the page cache (decompressed when compressed) and compared byte for byte with the
    source; it is then linked into place without overwriting anything; after the next flush the move
    is recorded in a JSON-lines journal (fsync), and only then is the source removed."
  - A source that changed during its copy stays at the source and is reported. Symlinks are never
    followed, at either end and at any depth; every directory below O(source) and O(destination) is
    reached one component at a time without following links and every file operation is made
    relative to an open directory, so a symlink planted by another user (also between two steps of
    the run) cannot send a write or an unlink outside the trees. A file that cannot be read is
    reported and the others go on.
  - "Metadata kept: owner, group, mode, times, extended attributes (C(user.*), C(security.*) such as
    file capabilities, C(trusted.*) as root) and POSIX ACLs; holes of sparse files (uncompressed
    copies); hard links whose names are all selected arrive as hard links, or all stay at the
    source when one of them cannot be placed. Where the destination
    cannot hold an attribute or ACL the file stays at the source and is reported, unless
    O(drop_unsupported_metadata=true); a mode is never widened (without its ACL a file gets the
    owning group's own permissions, not the ACL mask)."
  - A crash or kill at any moment leaves each file at the source or complete at the destination
    (perhaps both); the next run removes its own temporary files and finishes without duplicates.
  - O(state=rolled_back) puts the files of a journalled run back where they were, with the same checks.
  - "One run at a time per tree: each of O(source) and O(destination) is locked (C(flock)) together
    with every directory above it, so runs conflict whenever one's tree contains or equals the
    other's in either role (S to D against D to S, or S to D1 against S to D2)."
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - jts.tiered_storage.tier_destination
attributes:
  check_mode:
    support: full
    details: Lists what would move (or be put back) and the bytes; changes nothing.
  diff_mode:
    support: full
    details: The before is the list of source paths moved, the after their destinations.
  platform:
    platforms: posix
options:
  source:
    description: Absolute path of the directory to move files from.
    type: path
    required: true
  destination:
    description:
      - Absolute path of the directory to move files to; relative paths under O(source) are kept.
      - Missing sub-directories are created with the owner and mode of their source counterparts.
    type: path
    required: true
  state:
    description:
      - V(migrated) selects and moves files.
      - V(rolled_back) reads O(journal) and puts the files of run O(run_id) (default the last run) back.
    type: str
    choices: [migrated, rolled_back]
    default: migrated
  mode:
    description: V(move) removes each source after its verified copy is in place; V(copy) keeps it.
    type: str
    choices: [move, copy]
    default: move
  older_than:
    description:
      - Only files at least this old are selected, e.g. V(7d), V(12h), V(30m), V(2w); a bare number is days.
    type: str
    default: 7d
  age_stamp:
    description:
      - Which time stamp the age is measured from.
      - V(atime) on a filesystem mounted C(noatime) gives a warning, since access times are not kept there.
    type: str
    choices: [mtime, atime, ctime]
    default: mtime
  settle_time:
    description: Skip files modified within this time (still being written), e.g. V(10m); V(0) turns it off.
    type: str
    default: 10m
  include:
    description:
      - Shell globs; when given, only files matching one are selected.
      - A glob with a C(/) is matched against the path relative to O(source), otherwise against the file name.
    type: list
    elements: str
    default: []
  exclude:
    description: Shell globs of files and directories never selected (matched as for O(include)).
    type: list
    elements: str
    default: []
  min_size:
    description: Skip files smaller than this size, e.g. V(1K).
    type: str
  max_size:
    description: Skip files larger than this size, e.g. V(10G).
    type: str
  max_files:
    description: At most this many files per run (the oldest first); V(0) or unset means no limit.
    type: int
  max_bytes:
    description: At most this many bytes per run (the oldest first), e.g. V(500G); unset means no limit.
    type: str
  compression:
    description:
      - V(zstd) uses the C(zstd) tool on the host and adds C(.zst); V(gzip) uses Python's gzip and adds C(.gz).
      - Files whose names already end in a compressed suffix (C(.gz), C(.zst), C(.xz), ...) are copied as they are.
    type: str
    choices: [none, zstd, gzip]
    default: none
  compression_level:
    description:
      - Compression level (zstd 1..22; gzip 1..9, default 6).
      - Unset, zstd runs at level 3 with a minimum match length of 6 bytes (C(-3 --zstd=mml=6)), as fast as level 3 and, on logs
        full of ids and numbers, about 7 % smaller (within 10 % of C(gzip -6)).
    type: int
  missing:
    default: fail
  create_destination:
    description:
      - Make O(destination) (root's, mode C(0755), missing parents too) when it does not exist, once
        O(destination_mount), when set, is mounted and answers. It is reached from C(/) without following a symlink
        another user can have placed (as M(jts.tiered_storage.tier_directories) does).
      - "In check mode the run stops there: the result says it would make it (RV(destination_created)) and moves
        nothing."
    type: bool
    default: false
  source_mount:
    description:
      - When set, O(source) must lie on the filesystem mounted at this mount point.
      - With O(missing=skip), a source that exists below a mount point that is not in the kernel's mount table or
        does not answer within O(probe_timeout) skips the run (RV(missing) is V(source_mount)); a source that does
        not exist is V(source). With V(fail) the task fails.
    type: path
  source_fstype:
    description: When set, the filesystem type of O(source) must be this (a prefix match, so V(nfs) matches C(nfs4)).
    type: str
  destination_fstype:
    description: When set, the filesystem type of O(destination) must be this (a prefix match).
    type: str
  min_free:
    description:
      - Free space that must remain on the destination after the selected bytes (uncompressed) are added,
        as a size (V(20G)) or a percentage of the filesystem (V(5%)).
    type: str
    default: 5%
  check_space:
    description: Check the free space before the run. Turn off only where free space cannot be known.
    type: bool
    default: true
  journal:
    description:
      - The JSON-lines journal of completed moves. Default C(<destination>/.jts-migrate/journal.jsonl).
    type: path
  run_id:
    description:
      - With O(state=rolled_back), the run to undo (default the last one in the journal).
      - With O(state=migrated), the id recorded for this run (default a time stamp and a random suffix).
    type: str
  one_filesystem:
    description: Do not descend into directories on other filesystems than O(source).
    type: bool
    default: true
  drop_unsupported_metadata:
    description:
      - Move a file even when the destination cannot hold one of its extended attributes or its
        POSIX ACL (an NFS export, a filesystem without ACL or xattr support); the result's warnings name what was dropped. By default such a
        file stays at the source and is reported in RV(failed_files).
    type: bool
    default: false
  batch_files:
    description: Files per batch between two flushes of the destination filesystem.
    type: int
    default: 1000
  batch_bytes:
    description:
      - Bytes per batch between two flushes of the destination filesystem (at most).
      - A run of less than four such batches is cut in about four (of 16 MiB at least), so that flushing and checking one batch
        overlaps copying the next.
    type: str
    default: 256M
notes:
  - Empty source directories are left in place. Directory time stamps are not kept.
  - A hard NFS mount that dies during the copy can still block the run; bound the task with C(timeout).
seealso:
  - name: tier_migrate guide
    description: How the protocol works, what is and is not guaranteed, benchmark figures.
    link: https://github.com/jts/tiered_storage/blob/main/docs/tier_migrate.md
"""

EXAMPLES = r"""
- name: Move logs older than 7 days from the hot tier to warm, zstd-compressed
  jts.tiered_storage.tier_migrate:
    source: /var/lib/docker-jts/logs
    destination: /data/warm-storage/logs
    older_than: 7d
    include: ["*.log", "*.log.[0-9]*"]
    compression: zstd
    destination_mount: /data/warm-storage
    destination_fstype: btrfs

- name: Move backups older than 30 days from warm to the NAS
  jts.tiered_storage.tier_migrate:
    source: /data/warm-storage/daily-backups
    destination: /mnt/synology/jts/archives/database
    older_than: 30d
    destination_mount: /mnt/synology
    destination_fstype: nfs
    max_bytes: 500G
  register: moved

- name: The nightly move of the NAS backups, skipped (not failed) while the NAS is away
  jts.tiered_storage.tier_migrate:
    source: /data/warm-storage/daily-backups
    destination: /mnt/synology/jts/archives/database
    older_than: 30d
    destination_mount: /mnt/synology
    missing: skip
    create_destination: true

- name: Undo that run
  jts.tiered_storage.tier_migrate:
    source: /data/warm-storage/daily-backups
    destination: /mnt/synology/jts/archives/database
    state: rolled_back
    run_id: "{{ moved.run_id }}"
"""

RETURN = r"""
skipped:
  description: True when O(missing=skip) found the source, its tier or the destination tier missing; nothing was moved.
  returned: when skipped
  type: bool
  sample: true
missing:
  description: Which end was missing when skipped, V(source), V(source_mount) or V(destination_mount).
  returned: when skipped
  type: str
  sample: destination_mount
destination_created:
  description: True when O(create_destination) made O(destination) (in check mode, would make it).
  returned: success
  type: bool
  sample: false
msg:
  description: Why the move was skipped (with O(missing=skip)), or in check mode that O(destination) would be made.
  returned: when skipped, or in check mode when O(destination) would be made
  type: str
  sample: /mnt/synology is not mounted (or did not answer in 10 s)
source:
  description: O(source), when skipped.
  returned: when skipped
  type: str
  sample: /data/warm-storage/daily-backups
run_id:
  description: The id of the run recorded in the journal (null in check mode).
  returned: success
  type: str
  sample: 20260101T020000Z-1a2b3c
journal:
  description: The journal file.
  returned: always
  type: str
  sample: /data/warm-storage/logs/.jts-migrate/journal.jsonl
mode:
  description: V(move), V(copy), or V(rolled_back) for a rollback (O(state=rolled_back)).
  returned: success
  type: str
  sample: move
scanned:
  description: Directory entries looked at.
  returned: when O(state=migrated)
  type: int
  sample: 20450
selected:
  description: Files selected for this run.
  returned: when O(state=migrated)
  type: int
  sample: 120
selected_bytes:
  description: Bytes selected (uncompressed).
  returned: when O(state=migrated)
  type: int
  sample: 734003200
free_bytes:
  description: Free bytes on the destination before the run.
  returned: when O(state=migrated)
  type: int
  sample: 107374182400
margin_bytes:
  description: The O(min_free) margin in bytes.
  returned: when O(state=migrated)
  type: int
  sample: 5368709120
moved:
  description: Files moved (copied in copy mode, put back in a rollback); in check mode, files that would be.
  returned: success
  type: int
  sample: 118
moved_bytes:
  description: Bytes of those files (uncompressed).
  returned: success
  type: int
  sample: 730000000
rolled_back:
  description: Files put back by a rollback (the journal records each as C(rolled_back)).
  returned: when O(state=rolled_back)
  type: int
  sample: 118
files:
  description: The files moved (at most 1000 listed).
  returned: success
  type: list
  elements: dict
  sample: [{"src": "/var/log/app/a.log", "dst": "/data/warm-storage/logs/a.log.zst", "size": 1048576}]
skipped_count:
  description: Selected files not moved (changed during the copy, destination differs, ...).
  returned: success
  type: int
  sample: 2
skipped_bytes:
  description: Bytes of the skipped files.
  returned: success
  type: int
  sample: 4096
skipped_reasons:
  description: Skipped files counted by reason.
  returned: success
  type: dict
  sample: {"changed during the copy (left at the source)": 1}
skipped_files:
  description: The skipped files with their reason (at most 1000).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/var/log/app/b.log", "reason": "changed during the copy (left at the source)", "size": 2048}]
selection_skipped:
  description: Entries not selected, counted by reason (too young, not included, symlink, ...).
  returned: when O(state=migrated)
  type: dict
  sample: {"too young": 20000, "symlink (not followed)": 1}
selection_skipped_files:
  description: Notable entries not selected (symlinks, unreadable, settling, too large), at most 1000.
  returned: when O(state=migrated)
  type: list
  elements: dict
  sample: [{"path": "link-out", "reason": "symlink (not followed)", "size": 0}]
failed_count:
  description: Files that could not be moved (unreadable, verification failed, ...); they stay at the source.
  returned: success
  type: int
  sample: 0
failed_bytes:
  description: Bytes of the failed files.
  returned: success
  type: int
  sample: 0
failed_files:
  description: The failed files with the reason (at most 1000).
  returned: success
  type: list
  elements: dict
  sample: [{"path": "/var/log/app/c.log", "reason": "cannot open: Permission denied", "size": 10}]
hard_links_split:
  description:
    - Files moved whose hard links were not all moved with them (another name outside the
      selection); the content now exists under both names, nothing is lost.
  returned: success
  type: int
  sample: 0
cleaned_temp_files:
  description: Temporary files left by an interrupted earlier run and removed by this one.
  returned: success
  type: int
  sample: 0
locked:
  description: True when the run was refused because another run holds the lock.
  returned: failure
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import JournalError
from ansible_collections.jts.tiered_storage.plugins.module_utils._lock import LockBusy
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate import migrate
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import MigrateError
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import build_policy
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_undo import undo
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath

ARGUMENT_SPEC = dict(
    source=dict(type="path", required=True),
    destination=dict(type="path", required=True),
    state=dict(type="str", choices=["migrated", "rolled_back"], default="migrated"),
    mode=dict(type="str", choices=["move", "copy"], default="move"),
    older_than=dict(type="str", default="7d"),
    age_stamp=dict(type="str", choices=["mtime", "atime", "ctime"], default="mtime"),
    settle_time=dict(type="str", default="10m"),
    include=dict(type="list", elements="str", default=[]),
    exclude=dict(type="list", elements="str", default=[]),
    min_size=dict(type="str"),
    max_size=dict(type="str"),
    max_files=dict(type="int"),
    max_bytes=dict(type="str"),
    compression=dict(type="str", choices=["none", "zstd", "gzip"], default="none"),
    compression_level=dict(type="int"),
    require_mounted=dict(type="bool", default=True),
    missing=dict(type="str", choices=["fail", "skip"], default="fail"),
    create_destination=dict(type="bool", default=False),
    source_mount=dict(type="path"),
    destination_mount=dict(type="path"),
    source_fstype=dict(type="str"),
    destination_fstype=dict(type="str"),
    min_free=dict(type="str", default="5%"),
    check_space=dict(type="bool", default=True),
    journal=dict(type="path"),
    run_id=dict(type="str"),
    one_filesystem=dict(type="bool", default=True),
    probe_timeout=dict(type="float", default=10),
    lock_dir=dict(type="path", default="/run/jts"),
    drop_unsupported_metadata=dict(type="bool", default=False),
    batch_files=dict(type="int", default=1000),
    batch_bytes=dict(type="str", default="256M"),
)


def _diff(result):
    files = result.get("files") or []
    return {
        "before_header": "source",
        "after_header": "destination",
        "before": "".join(f["src"] + "\n" for f in files),
        "after": "".join(f["dst"] + "\n" for f in files),
    }


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        policy = build_policy(params)
    except MigrateError as exc:
        fail(module, exc)
    zstd_bin = None
    if params["compression"] == "zstd" or params["state"] == "rolled_back":
        zstd_bin = module.get_bin_path("zstd", required=params["compression"] == "zstd")
    try:
        if params["state"] == "rolled_back":
            result = undo(policy, check_mode=module.check_mode, zstd_bin=zstd_bin)
        else:
            result = migrate(
                policy, check_mode=module.check_mode, zstd_bin=zstd_bin, find_bin=module.get_bin_path("find")
            )
    except Skipped as exc:
        module.exit_json(changed=False, skipped=True, msg=str(exc), missing=exc.missing, source=params["source"])
    except LockBusy as exc:
        fail(module, exc, locked=True)
    except (MigrateError, JournalError, UnsafePath) as exc:
        fail(module, exc)
    except OSError as exc:
        fail(module, exc, prefix="tier_migrate")
    for warning in result.pop("warnings", []):
        module.warn(warning)
    if result.get("failed_count"):
        module.warn("%d file(s) could not be moved and stay where they were; see failed_files" % result["failed_count"])
    if module._diff and result.get("changed"):
        result["diff"] = _diff(result)
    error = result.pop("error", None)
    if error:
        module.fail_json(msg=error, **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
