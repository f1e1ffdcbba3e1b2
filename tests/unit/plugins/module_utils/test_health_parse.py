# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_health_parse: the mount table, btrfs stats and diskstats parsers (moved from
tests/unit/plugins/modules/test_storage_health.py; the fixtures stay under its fixtures/storage_health/)."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_parse import (
    mount_of,
    parse_btrfs_stats,
    parse_diskstats,
    parse_mounts,
)

HEALTH = Path(__file__).resolve().parents[1] / "modules" / "fixtures" / "storage_health"


def text(path):
    return path.read_text()


# ------------------------------------------------------------------------------ parsers


def test_parse_mounts_unescapes_and_keeps_options():
    mounts = parse_mounts(text(HEALTH / "mounts_lab.txt"))
    assert mounts["/data/warm-storage"]["fstype"] == "btrfs"
    assert "compress=zstd:3" in mounts["/data/warm-storage"]["options"]
    assert mounts["/mnt/synology"]["source"] == "127.0.0.1:/srv/nas"
    assert "/srv/with space" in mounts


def test_stacked_mount_last_wins():
    mounts = parse_mounts("/dev/a /m ext4 rw 0 0\n/dev/b /m xfs rw 0 0\nshort line\n")
    assert mounts["/m"]["fstype"] == "xfs"


def test_mount_of_takes_the_longest_prefix():
    mounts = parse_mounts(text(HEALTH / "mounts_lab.txt"))
    assert mount_of("/data/warm-storage/logs/x", mounts) == "/data/warm-storage"
    assert mount_of("/data/warm-storage", mounts) == "/data/warm-storage"
    assert mount_of("/data/warm-storagex", mounts) == "/"
    assert mount_of("/var/lib/postgres/../kafka/x", mounts) == "/var/lib/kafka"


def test_parse_btrfs_stats():
    clean = parse_btrfs_stats(text(HEALTH / "btrfs_stats_clean.txt"))
    assert clean == {
        "/dev/sda": {
            "write_io_errs": 0,
            "read_io_errs": 0,
            "flush_io_errs": 0,
            "corruption_errs": 0,
            "generation_errs": 0,
        }
    }
    errors = parse_btrfs_stats(text(HEALTH / "btrfs_stats_errors.txt") + "garbage line\n")
    assert errors["/dev/sda"]["read_io_errs"] == 3 and errors["/dev/sdb"]["corruption_errs"] == 0


def test_parse_diskstats():
    stats = parse_diskstats(text(HEALTH / "diskstats.txt") + "1 2 short\n 8 1 sdz a b c d e f g h i j k\n")
    assert sorted(stats) == ["dm-0", "nvme0n1", "sda"]
    assert stats["sda"]["sectors_written"] == 563706 and stats["sda"]["io_ms"] == 6064
