"""nas_archive on the lab VM after converge and the side effects (Molecule's testinfra verifier).

The side effect (side_effects/nas_archive.yml) mirrors, snapshots, re-runs and takes the NAS away;
these checks make sure nothing it did was left half-done or locked, and that check mode on the VM's
own Python reports without writing.
"""

from __future__ import annotations

import json


def test_rsync_is_installed(host):
    assert host.exists("rsync"), "nas_archive needs rsync on the host"


def test_no_unfinished_snapshots_left(host):
    cmd = host.run(
        "timeout --signal=KILL 60 find /mnt/synology/jts -xdev "
        "\\( -name '*.partial' -o -name '*.deleting' -o -name '.latest.tmp' \\) -print"
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "", "nas_archive left unfinished runs: %s" % cmd.stdout


def test_side_effect_cleaned_up(host):
    assert not host.file("/data/warm-storage/development").exists
    # archives/configs/configs holds the nightly run's own snapshot now (tests/test_nightly.py)
    for name in ("datasets", "notebooks"):
        listing = host.run("timeout --signal=KILL 20 ls -A /mnt/synology/jts/development/%s" % name)
        assert listing.rc == 0 and listing.stdout.strip() == "", listing.stdout


def test_nas_answers_after_the_outage(host):
    cmd = host.run("timeout --signal=KILL 20 stat -c %F /mnt/synology/jts/archives")
    assert cmd.rc == 0 and "directory" in cmd.stdout


def test_no_lock_is_held(host):
    cmd = host.run(
        'for f in /run/jts/jts-nas_archive-*.lock; do [ -e "$f" ] || continue; '
        'flock -n "$f" true || echo "held: $f"; done'
    )
    assert cmd.rc == 0 and "held" not in cmd.stdout, cmd.stdout


def test_check_mode_on_the_vm_reports_and_writes_nothing(host):
    """The module itself on the VM's Python, to the real NFS tier: check mode transfers nothing."""
    dest = "/mnt/synology/jts/development/experiments/na-verify"
    out = host.ansible(
        "jts.tiered_storage.nas_archive",
        "mode=mirror source=/etc/ssh destination=%s destination_mount=/mnt/synology "
        "destination_fstype=nfs nas_host=127.0.0.1 delete=true probe_timeout=10" % dest,
        check=True,
        become=True,
    )
    assert out.get("changed") is True and not out.get("skipped"), json.dumps(out)
    assert out.get("files_transferred", 0) >= 1 and out.get("files_deleted") == 0
    assert not host.file(dest).exists
