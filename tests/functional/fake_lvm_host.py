"""A fake storage host for running the lifecycle's backup step on a machine without device-mapper.

Called as ``python fake_lvm_host.py <tool> <args>`` by small wrappers named vgs, lvs, lvcreate,
lvremove, blkid, mount, umount, mountpoint, findmnt and zstd in a directory put first on PATH. State (the VG, its LVs, what is mounted) lives in
the JSON file $FAKE_LVM_STATE. LVM reports are printed in LVM 2.03's JSON shape. "Mounting" a
snapshot copies its origin's directory ($FAKE_ORIGINS/<origin>) to the mount point, so the archive
sees a real tree; "unmounting" empties it again. Failures on demand: $FAKE_FAIL_MOUNT=<origin>,
$FAKE_FAIL_ZSTD=1.

A live origin: $FAKE_LIVE=<origin>=<directory>[,...] makes lvcreate of a snapshot of that origin
copy the directory as it is at that moment (``cp -a``, owners kept, sockets dropped; files that
vanish while it is copied are skipped, as a running database's are) into
$FAKE_SNAPSHOTS/<snapshot>, the snapshot's content; mounting it copies that (``cp -a``) to the
mount point. This is how a snapshot of a running PostgreSQL is stood in for.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import stat
import subprocess
import sys


def load():
    with open(os.environ["FAKE_LVM_STATE"]) as handle:
        return json.load(handle)


def save(state):
    with open(os.environ["FAKE_LVM_STATE"], "w") as handle:
        json.dump(state, handle, indent=1)


def log(state, argv):
    state.setdefault("log", []).append(argv)


def report(kind, rows):
    print(json.dumps({"report": [{kind: rows}]}, indent=2))


def row_of(state, name):
    return next((row for row in state["lvs"] if row["lv_name"] == name), None)


def live_origins():
    pairs = [item.split("=", 1) for item in os.environ.get("FAKE_LIVE", "").split(",") if item]
    return dict(pairs)


def copy_live(source, target):
    """``cp -a`` of a directory that is being written (errors for vanished files ignored), sockets dropped."""
    subprocess.run(["cp", "-a", source, target], stderr=subprocess.DEVNULL, check=False)
    for base, _dirs, files in os.walk(target):
        for name in files:
            path = os.path.join(base, name)
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)


def main(tool, args):
    state = load()
    log(state, [tool, *args])
    save(state)
    vg = state["vg"]
    if tool == "vgs":
        if args[-1] != vg["vg_name"]:
            print('  Volume group "%s" not found' % args[-1], file=sys.stderr)
            return 5
        report("vg", [vg])
        return 0
    if tool == "lvs":
        report("lv", state["lvs"])
        return 0
    if tool == "lvcreate":
        name, extents = args[args.index("--name") + 1], int(args[args.index("--extents") + 1])
        origin = args[-1].split("/")[1]
        if extents > int(vg["vg_free_count"]):
            print("  Volume group has insufficient free space", file=sys.stderr)
            return 5
        size = extents * int(vg["vg_extent_size"])
        live = live_origins().get(origin)
        if live:
            copy_live(live, os.path.join(os.environ["FAKE_SNAPSHOTS"], name))
        vg["vg_free_count"] = str(int(vg["vg_free_count"]) - extents)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S +0000")
        state["lvs"].append(
            {
                "lv_name": name,
                "vg_name": vg["vg_name"],
                "lv_attr": "swi-a-s---",
                "lv_size": str(size),
                "origin": origin,
                "origin_size": row_of(state, origin)["lv_size"],
                "data_percent": "0.01",
                "lv_time": now,
                "lv_snapshot_invalid": "",
            }
        )
        save(state)
        print('  Logical volume "%s" created.' % name)
        return 0
    if tool == "lvremove":
        name = args[-1].split("/")[1]
        if "/dev/%s/%s" % (vg["vg_name"], name) in state["mounted"].values():
            print("  Logical volume %s contains a filesystem in use." % args[-1], file=sys.stderr)
            return 5
        row = row_of(state, name)
        vg["vg_free_count"] = str(int(vg["vg_free_count"]) + int(row["lv_size"]) // int(vg["vg_extent_size"]))
        state["lvs"].remove(row)
        save(state)
        shutil.rmtree(os.path.join(os.environ.get("FAKE_SNAPSHOTS", "/nonexistent"), name), ignore_errors=True)
        print('  Logical volume "%s" successfully removed.' % name)
        return 0
    if tool == "blkid":
        print("ext4")
        return 0
    if tool == "mount":
        device, target = args[-2], args[-1]
        options = args[args.index("-o") + 1].split(",")
        assert "ro" in options, "snapshots must be mounted read-only: %s" % options
        origin = row_of(state, device.split("/")[-1])["origin"]
        if os.environ.get("FAKE_FAIL_MOUNT") == origin:
            print("mount: %s: wrong fs type, bad option, bad superblock" % target, file=sys.stderr)
            return 32
        taken = os.path.join(os.environ.get("FAKE_SNAPSHOTS", "/nonexistent"), device.split("/")[-1])
        if os.path.isdir(taken):
            subprocess.run(["cp", "-a", taken + "/.", target], check=True)
        else:
            shutil.copytree(os.path.join(os.environ["FAKE_ORIGINS"], origin), target, symlinks=True, dirs_exist_ok=True)
        state["mounted"][target] = device
        save(state)
        return 0
    if tool == "umount":
        target = args[-1]
        if target not in state["mounted"]:
            print("umount: %s: not mounted." % target, file=sys.stderr)
            return 32
        for entry in os.listdir(target):
            path = os.path.join(target, entry)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
        del state["mounted"][target]
        save(state)
        return 0
    if tool == "mountpoint":
        path = args[-1]
        return 0 if path in state["mounted"] or path in state.get("real_mounts", []) else 32
    if tool == "findmnt":
        print("\n".join(["/", *state.get("real_mounts", []), *state["mounted"]]))
        return 0
    if tool == "zstd":
        if os.environ.get("FAKE_FAIL_ZSTD"):
            sys.stdin.buffer.read()
            print("zstd: error 70 : Write error : No space left on device", file=sys.stderr)
            return 70
        os.execv("/usr/bin/zstd", ["zstd", *args])  # noqa: S606 - the real tool, argument list
    print("fake_lvm_host: unknown tool %s" % tool, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
