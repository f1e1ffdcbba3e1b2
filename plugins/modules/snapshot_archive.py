#!/usr/bin/python
# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: snapshot_archive
short_description: Archive a mounted snapshot as tar and zstd with a checksum, verify it, restore it
version_added: 0.1.0
description:
  - "O(state=archived): writes the directory O(src) (typically a read-only mounted LVM snapshot) to
    O(path) as a C(tar | zstd) stream (numeric owners, ACLs, extended attributes, sparse files, one
    filesystem), hashing it (SHA-256) while it is written to a temporary file in the directory of O(path).
    The file is flushed, read back from the disk and compared with that hash, decompressed and listed;
    only then does it get its final name and a C(<path>.sha256) file in C(sha256sum) format. A failure at
    any point removes the temporary file; earlier archives are never touched or overwritten."
  - "The temporary file has no name while it is written where the filesystem allows it (C(O_TMPFILE) -
    ext4, XFS, btrfs, tmpfs), so a run killed even with SIGKILL leaves nothing in the directory for a
    later move (the lifecycle's move of C(daily-backups) to the NAS) to carry. Elsewhere (NFS) it is
    C(.<archive>.<8 characters>.partial), locked while it is written; every O(state=archived) run removes
    the ones in the directory of O(path) that no live run holds (C(cleaned_incomplete))."
  - "Every archive written carries a manifest, the member C(.jts-backup-manifest.json) at its root: C(mode)
    (V(application) or V(crash)), C(method), C(reason), the LSNs, the WAL files and the C(data_directory) it
    carries. With O(consistency) of an application-consistent PostgreSQL origin, the archive also carries
    C(<data_directory>/backup_label), C(tablespace_map) (when not empty) and the WAL segments of the backup as
    C(<data_directory>/pg_wal/<segment>) (replacing the snapshot's own, incomplete ones), and leaves out
    C(postmaster.pid): the archive alone restores into a cluster that starts. A crash-consistent archive never
    carries a C(backup_label). A source whose root holds a file named C(.jts-backup-manifest.json) is refused
    (it would be replaced by the manifest on restore): rename it."
  - O(state=verified) checks an existing archive against its C(.sha256) file and lists it.
  - "O(state=restored) verifies the archive, then extracts it into the empty directory O(dest). For a
    PostgreSQL application-consistent archive it then checks that the C(backup_label) and every WAL segment
    of the manifest are in the restored data directory and removes a C(postmaster.pid) there (a live
    postmaster's pid in it can keep the restored cluster from starting on the same host). The manifest is read
    (RV(consistency)) and removed from O(dest): the restored tree is the LV's. Only the manifest this module
    wrote (the archive's last member, named without C(./)) is read: in an archive from before manifests, a file
    of that name is the LV's and is left alone. A manifest that is not a regular JSON object of at most 1 MiB,
    or names WAL files that are not segment names, fails the restore."
  - The tools run as a pipeline of argument lists, never through a shell.
author:
  - JTS infrastructure team (@jts-infra)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: An existing archive is still verified; nothing is written or extracted.
  diff_mode:
    support: none
  platform:
    platforms: posix
requirements:
  - GNU tar and zstd on the host.
options:
  path:
    description: The archive; it must end in C(.tar.zst). Its checksum file is C(<path>.sha256).
    type: path
    required: true
  state:
    description:
      - V(archived) creates the archive from O(src) (nothing to do when it exists and verifies).
      - V(verified) checks an existing archive.
      - V(restored) extracts a verified archive into O(dest).
    type: str
    choices: [archived, verified, restored]
    default: archived
  src:
    description: The directory to archive (required with O(state=archived)); paths in the archive are relative to it.
    type: path
  dest:
    description: The directory to restore into (required with O(state=restored)); it must exist and be empty unless O(force).
    type: path
  force:
    description: With O(state=restored), extract into a non-empty O(dest), overwriting files of the same names.
    type: bool
    default: false
  compression_level:
    description: zstd level, 1 to 22 (levels above 19 use C(--ultra) and much memory).
    type: int
    default: 3
  threads:
    description: zstd worker threads; V(0) means one per CPU core.
    type: int
    default: 0
  one_file_system:
    description: Do not descend into other filesystems mounted below O(src).
    type: bool
    default: true
  consistency:
    description:
      - With O(state=archived), the C(consistency) that M(jts.tiered_storage.lvm_snapshot) returned for the origin of
        the snapshot mounted at O(src) (RV(jts.tiered_storage.lvm_snapshot#module:consistency)); it is recorded in
        the manifest. Unset, the archive is crash-consistent with the reason C(no consistency method configured).
      - For C(mode=application), C(method=postgresql), C(backup_label), C(wal_files) and C(wal_dest) (where the
        segments were copied) are used; the members are staged in a temporary directory beside C(wal_dest) (the
        segments hard-linked, so on the same filesystem) and removed after. When the snapshot cannot carry them
        (no C(data_directory), C(<data_directory>/pg_wal) a symlink to another volume, no WAL copied), the archive
        is written crash-consistent, the manifest says why and a warning is given.
    type: dict
notes:
  - A restore writes into O(dest) as it reads; restore into an empty directory and move it into place
    after it succeeded (see the restore procedure in the guide).
seealso:
  - module: jts.tiered_storage.lvm_snapshot
  - name: lvm_snapshot guide
    description: The backup step, archive layout and the restore procedure.
    link: https://github.com/jts/tiered_storage/blob/main/docs/lvm_snapshot.md
"""

EXAMPLES = r"""
- name: Archive a mounted snapshot into the warm tier
  jts.tiered_storage.snapshot_archive:
    src: /run/jts-backup/postgres
    path: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst

- name: Archive it with the PostgreSQL backup held across the snapshot (label and WAL in the archive)
  jts.tiered_storage.snapshot_archive:
    src: /run/jts-backup/postgres
    path: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst
    consistency: "{{ snapset.consistency.postgres }}"

- name: Verify it again later
  jts.tiered_storage.snapshot_archive:
    path: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst
    state: verified

- name: Restore it into an empty directory
  jts.tiered_storage.snapshot_archive:
    path: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst
    state: restored
    dest: /var/lib/postgresql.restored
"""

RETURN = r"""
archive:
  description: The archive.
  returned: always
  type: str
  sample: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst
checksum_file:
  description: Its checksum file (C(sha256sum -c) can check it from its directory).
  returned: when O(state=archived) wrote the archive
  type: str
  sample: /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst.sha256
sha256:
  description: SHA-256 of the archive file, as read back from the disk.
  returned: success, except for a new archive in check mode
  type: str
  sample: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
size_bytes:
  description: Size of the archive file.
  returned: success, except for a new archive in check mode
  type: int
  sample: 1048576
entries:
  description: Entries (files, directories, links) listed in the archive.
  returned: success, except for a new archive in check mode
  type: int
  sample: 1520
destination:
  description: Where the archive was restored.
  returned: when O(state=restored)
  type: str
  sample: /var/lib/postgresql.restored
consistency:
  description:
    - The archive's manifest (the member C(.jts-backup-manifest.json)) - C(format), C(mode), C(method), C(reason),
      C(start_lsn), C(stop_lsn), C(start_wal), C(stop_wal), C(data_directory), C(backup_label) and C(tablespace_map)
      (true when carried), C(wal_files) (the segments carried); after a restore also C(postmaster_pid_removed) for
      PostgreSQL.
    - Null after a restore of an archive without a manifest (written before manifests existed).
  returned: when O(state=archived) wrote the archive, and when O(state=restored) extracted it
  type: dict
  sample:
    format: 1
    mode: application
    method: postgresql
    reason: non-exclusive backup held on one connection across the snapshots (0/5000028 to 0/5000138); ...
    start_lsn: 0/5000028
    stop_lsn: 0/5000138
    start_wal: "000000010000000000000005"
    stop_wal: "000000010000000000000005"
    data_directory: "15/main"
    backup_label: true
    tablespace_map: false
    wal_files: ["000000010000000000000005"]
cleaned_incomplete:
  description: Temporary files of killed runs removed from the directory of O(path) (in check mode, that would be).
  returned: when O(state=archived)
  type: list
  elements: str
  sample: [".postgres_20261122T023000Z.tar.zst.3f9a0c1e.partial"]
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: archived /run/jts-backup/postgres into /data/warm-storage/daily-backups/postgres/postgres_20261123T023000Z.tar.zst (...)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, fail
from ansible_collections.jts.tiered_storage.plugins.module_utils._snapshot_archive import (
    SnapshotArchiveError,
    create,
    restore,
    verify,
)

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    state=dict(type="str", choices=["archived", "verified", "restored"], default="archived"),
    src=dict(type="path"),
    dest=dict(type="path"),
    force=dict(type="bool", default=False),
    compression_level=dict(type="int", default=3),
    threads=dict(type="int", default=0),
    one_file_system=dict(type="bool", default=True),
    consistency=dict(type="dict"),
)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "archived", ["src"]), ("state", "restored", ["dest"])],
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params["compression_level"] <= 22:
        fail(module, JtsError("compression_level: %d is outside 1..22" % params["compression_level"]))
    if params["threads"] < 0:
        fail(module, JtsError("threads: %d must be 0 or more" % params["threads"]))
    zstd_bin = module.get_bin_path("zstd", required=True)
    tar_bin = module.get_bin_path("tar", required=True)
    try:
        if params["state"] == "archived":
            result = create(
                params["src"],
                params["path"],
                zstd_bin,
                tar_bin,
                level=params["compression_level"],
                threads=params["threads"],
                one_file_system=params["one_file_system"],
                check_mode=module.check_mode,
                consistency=params["consistency"],
            )
            given = (params["consistency"] or {}).get("mode")
            manifest = result.get("consistency")
            if manifest and given == "application" and manifest["mode"] != "application":
                module.warn("%s: %s" % (params["path"], manifest["reason"]))
        elif params["state"] == "verified":
            result = verify(params["path"], zstd_bin, tar_bin)
            result.update(changed=False, msg="archive %s verifies (sha256 %s)" % (params["path"], result["sha256"]))
        else:
            result = restore(
                params["path"], params["dest"], zstd_bin, tar_bin, force=params["force"], check_mode=module.check_mode
            )
    except SnapshotArchiveError as exc:
        fail(module, exc, archive=params["path"])
    except OSError as exc:
        # the path the system names, else the archive's (describe() would leave an unnamed path out)
        fail(module, JtsError("%s: %s" % (exc.filename or params["path"], exc.strerror or exc)), archive=params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
