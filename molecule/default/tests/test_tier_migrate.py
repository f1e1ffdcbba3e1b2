"""tier_migrate on the lab VM after converge and the side effects (Molecule's testinfra verifier).

The side effect (side_effects/tier_migrate.yml) moves, re-runs, undoes and injects a NAS outage;
these checks make sure nothing it did was left half-done on the tiers.
"""

from __future__ import annotations

import json

import pytest

TIER_ROOTS = ["/var/lib/postgresql", "/data/warm-storage", "/mnt/synology/jts"]


def test_zstd_is_installed(host):
    assert host.exists("zstd"), "tier_migrate's zstd compression needs the zstd tool on the host"


@pytest.mark.parametrize("root", TIER_ROOTS)
def test_no_temporary_files_left(host, root):
    cmd = host.run("timeout --signal=KILL 60 find %s -xdev -name '.jts-migrate-*.tmp' -print" % root)
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "", "tier_migrate left temporary files: %s" % cmd.stdout


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/postgresql/sidefx-logs",
        "/data/warm-storage/logs/sidefx",
        "/data/warm-storage/daily-backups/sidefx",
        "/mnt/synology/jts/archives/database/sidefx",
    ],
)
def test_side_effect_cleaned_up(host, path):
    assert not host.file(path).exists


def test_nas_answers_after_the_outage(host):
    cmd = host.run("timeout --signal=KILL 20 stat -c %F /mnt/synology/jts")
    assert cmd.rc == 0 and "directory" in cmd.stdout


def test_no_lock_is_held(host):
    cmd = host.run(
        'for f in /run/jts/jts-tree-*.lock; do [ -e "$f" ] || continue; flock -n "$f" true || echo "held: $f"; done'
    )
    assert cmd.rc == 0 and "held" not in cmd.stdout, cmd.stdout


def test_check_mode_on_the_vm_lists_aged_files(host):
    """The module itself on the VM's Python: check mode reports and changes nothing."""
    host.run("mkdir -p /root/tm-verify/src /data/warm-storage/temp-processing/tm-verify")
    try:
        host.run("printf abc > /root/tm-verify/src/old.log && touch -d '2025-01-01' /root/tm-verify/src/old.log")
        out = host.ansible(
            "jts.tiered_storage.tier_migrate",
            "source=/root/tm-verify/src destination=/data/warm-storage/temp-processing/tm-verify settle_time=0",
            check=True,
            become=True,
        )
        assert out.get("moved") == 1, json.dumps(out)
        assert out.get("moved_bytes") == 3
        assert host.file("/root/tm-verify/src/old.log").exists
        assert not host.file("/data/warm-storage/temp-processing/tm-verify/old.log").exists
    finally:
        host.run("rm -rf /root/tm-verify /data/warm-storage/temp-processing/tm-verify")


def test_lock_directory_is_root_only(host):
    """Locks live where no other user can plant or hold one (issue 14, case 10)."""
    lock_dir = host.file("/run/jts")
    assert lock_dir.is_directory and lock_dir.user == "root" and lock_dir.mode == 0o700
