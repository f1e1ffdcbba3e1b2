"""Snapshots and the backup chain on the lab VM (side_effects/lvm_snapshot.yml did the work).

The side effect created, listed, invalidated and pruned snapshot sets on the real VG, ran the
lifecycle's backup step for postgres and restored its newest archive into /root/sidefx-restore.
These checks look at what it left: a verified archive, the same bytes back, and no snapshot or
mount left behind by either.
"""

from __future__ import annotations

BACKUPS = "/data/warm-storage/daily-backups/postgres"
DATA = "/var/lib/postgresql/sidefx-backup.bin"
RESTORED = "/root/sidefx-restore/sidefx-backup.bin"


def _newest_archive(host):
    cmd = host.run("ls -1 %s/postgres_*.tar.zst", BACKUPS)
    assert cmd.rc == 0, "no postgres archive in %s: %s" % (BACKUPS, cmd.stderr)
    return sorted(cmd.stdout.split())[-1]


def test_backup_archive_verifies_against_its_checksum_file(host):
    archive = _newest_archive(host)
    assert host.file(archive + ".sha256").exists
    check = host.run("cd %s && sha256sum --check --strict %s.sha256", BACKUPS, archive.rsplit("/", 1)[1])
    assert check.rc == 0, check.stdout + check.stderr
    assert host.run("zstd --test --quiet %s", archive).rc == 0


def test_no_temporary_archive_left(host):
    left = host.run("find %s -name '.*' -type f -print", BACKUPS).stdout.strip()
    assert left == "", "temporary archive files left: %s" % left


def test_restore_gives_back_the_same_bytes(host):
    original = host.run("sha256sum %s", DATA)
    restored = host.run("sha256sum %s", RESTORED)
    assert original.rc == 0 and restored.rc == 0, original.stderr + restored.stderr
    assert original.stdout.split()[0] == restored.stdout.split()[0]


def test_no_snapshot_left_by_the_backup_or_the_side_effect(host):
    names = host.run("lvs --noheadings --options lv_name,origin vg_jts").stdout.split("\n")
    snapshots = [line.split()[0] for line in names if len(line.split()) == 2]
    assert snapshots == [], "snapshots left behind: %s" % snapshots


def test_no_backup_mount_left(host):
    mounts = host.run("findmnt --kernel --list --noheadings --output TARGET").stdout.split()
    assert [m for m in mounts if m.startswith("/run/jts-backup")] == []
