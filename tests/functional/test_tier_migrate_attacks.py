"""tier_migrate run by root against trees an unprivileged user can write (issue 14, cases 8-10).

The attacker is a real second user (uid/gid 65534 through ``setpriv``) acting on the trees
between the root runs or during one, never a patch of the module's own calls. Each test failed
on the code before the trees were walked with O_NOFOLLOW and the locks moved to /run/jts.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = ROOT / "plugins" / "modules" / "tier_migrate.py"
NOBODY = 65534
DAY = 86400

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root and a second user"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv"),
]


def as_user(argv, **kw):
    """Run ``argv`` as the unprivileged user."""
    cmd = ["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", *argv]
    return subprocess.run(cmd, capture_output=True, check=True, **kw)


def run_tm(work, args, timeout=300):
    args = dict(args)
    args.setdefault("settle_time", "0")
    args.setdefault("older_than", "1d")
    args.setdefault("require_mounted", False)
    path = work / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=str(ROOT / ".collections"))
    proc = subprocess.run([sys.executable, str(MODULE), str(path)], capture_output=True, env=env, timeout=timeout)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        pytest.fail("module printed no JSON (rc=%d): %s %s" % (proc.returncode, proc.stdout, proc.stderr))


@pytest.fixture
def site():
    """A tree the second user can reach: src and dst (root's, 0755), a root-only directory, and
    ``work`` (root-only) for the module's arguments, journal and locks."""
    base = Path(tempfile.mkdtemp(prefix="jts-attack-", dir="/tmp"))
    os.chmod(base, 0o755)  # noqa: S103 - the second user must reach the trees
    for name, mode in (("src", 0o755), ("dst", 0o755), ("rootonly", 0o700), ("work", 0o700)):
        (base / name).mkdir()
        os.chmod(base / name, mode)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _args(site, **kw):
    args = {
        "source": str(site / "src"),
        "destination": str(site / "dst"),
        "journal": str(site / "work" / "journal.jsonl"),
        "lock_dir": str(site / "work" / "locks"),
    }
    args.update(kw)
    return args


def _user_file(path, data, days=10):
    """A file the user writes, aged by the user."""
    as_user([sys.executable, "-c", "import sys; open(sys.argv[1], 'wb').write(sys.argv[2].encode())", str(path), data])
    as_user(["touch", "-d", "@%d" % (time.time() - days * DAY), str(path)])


def _user_dir(path):
    path.mkdir()
    os.chown(path, NOBODY, NOBODY)


# 8. A user-owned destination directory with a symlink planted in it.
def test_a_symlink_planted_in_a_user_owned_destination_directory_is_not_followed(site):
    _user_dir(site / "src" / "alice")
    _user_file(site / "src" / "alice" / "first.log", "first")
    assert run_tm(site / "work", _args(site))["moved"] == 1
    assert os.stat(site / "dst" / "alice").st_uid == NOBODY  # the mirrored owner: the user owns it now
    # The user, between two nightly runs: a link to a root-only directory, and an old file to carry there.
    as_user(["ln", "-s", str(site / "rootonly"), str(site / "dst" / "alice" / "sub")])
    as_user(["mkdir", str(site / "src" / "alice" / "sub")])
    _user_file(site / "src" / "alice" / "sub" / "x.sh", "echo owned")
    result = run_tm(site / "work", _args(site))
    assert os.listdir(site / "rootonly") == []
    assert (site / "src" / "alice" / "sub" / "x.sh").read_text() == "echo owned"
    assert result["moved"] == 0 and result["skipped_count"] == 1
    assert "symlink" in result["skipped_files"][0]["reason"]


def test_undo_does_not_write_through_a_user_owned_source_directory(site):
    _user_dir(site / "src" / "alice")
    as_user(["mkdir", str(site / "src" / "alice" / "sub")])
    _user_file(site / "src" / "alice" / "sub" / "x.sh", "echo owned")
    assert run_tm(site / "work", _args(site))["moved"] == 1
    # The user swaps the now empty source directory for a link to a root-only directory.
    as_user(["rmdir", str(site / "src" / "alice" / "sub")])
    as_user(["ln", "-s", str(site / "rootonly"), str(site / "src" / "alice" / "sub")])
    result = run_tm(site / "work", _args(site, state="rolled_back"))
    assert os.listdir(site / "rootonly") == []
    assert (site / "dst" / "alice" / "sub" / "x.sh").read_text() == "echo owned"
    assert result["rolled_back"] == 0 and result["skipped_count"] == 1


# 9. Removing the source by path while the user swaps its parent for a symlink, over and over.
SWAPPER = r"""
import os, sys, time
d, real, link_to, stop = sys.argv[1:5]
end = time.time() + 60
while not os.path.exists(stop) and time.time() < end:
    try:
        os.rename(d, real)
        os.symlink(link_to, d)
        os.unlink(d)
        os.rename(real, d)
    except OSError:
        pass
"""


def test_a_parent_swapped_during_the_run_never_sends_an_unlink_elsewhere(site):
    _user_dir(site / "src" / "alice")
    as_user(["mkdir", str(site / "src" / "alice" / "d")])
    names = ["f%04d" % i for i in range(600)]
    code = (
        "import os, sys, time\n"
        "d = sys.argv[1]; old = time.time() - 10 * 86400\n"
        "for n in sys.argv[2:]:\n"
        "    p = os.path.join(d, n); open(p, 'w').write(n); os.utime(p, (old, old))\n"
    )
    as_user([sys.executable, "-c", code, str(site / "src" / "alice" / "d"), *names])
    victims = site / "victims"  # what root must never delete: same names, elsewhere
    victims.mkdir(mode=0o755)
    for name in names:
        (victims / name).write_text("precious")
    swapper = subprocess.Popen(
        [
            "setpriv",
            "--reuid=%d" % NOBODY,
            "--regid=%d" % NOBODY,
            "--clear-groups",
            sys.executable,
            "-c",
            SWAPPER,
            str(site / "src" / "alice" / "d"),
            str(site / "src" / "alice" / "d.real"),
            str(victims),
            str(site / "stop"),
        ]
    )
    try:
        for _round in range(3):
            run_tm(site / "work", _args(site, batch_files=1))
    finally:
        (site / "stop").touch()
        swapper.wait(timeout=60)
    assert sorted(os.listdir(victims)) == names
    assert all((victims / n).read_text() == "precious" for n in names)


# 10. Lock files where a user can plant them.
def _old_lock_name(lock_dir, source, dest):
    digest = hashlib.sha256("\0".join([source, dest]).encode()).hexdigest()[:16]
    return os.path.join(lock_dir, "jts-tier_migrate-%s.lock" % digest)


HOLDER = r"""
import fcntl, os, sys, time
fds = []
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fds.append(fd)
    except OSError:
        pass
print(len(fds), flush=True)
time.sleep(120)
"""


def test_a_user_cannot_hold_the_nightly_run_off_with_a_planted_lock(site):
    """With the default lock directory the user has nowhere to plant a lock the run would take."""
    (site / "src" / "a.log").write_text("a")
    os.utime(site / "src" / "a.log", (time.time() - 10 * DAY,) * 2)
    args = _args(site)
    del args["lock_dir"]
    planted = [_old_lock_name("/run/lock", args["source"], args["destination"]), "/run/jts/planted.lock"]
    holder = subprocess.Popen(
        [
            "setpriv",
            "--reuid=%d" % NOBODY,
            "--regid=%d" % NOBODY,
            "--clear-groups",
            sys.executable,
            "-c",
            HOLDER,
            *planted,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        held = int(holder.stdout.readline())
        assert held >= 1  # the old, predictable name in /run/lock is the user's now
        result = run_tm(site / "work", args)
        assert result.get("locked") is not True, result.get("msg")
        assert result["moved"] == 1
        assert not os.path.exists("/run/jts/planted.lock")
        st = os.stat("/run/jts")
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)
    finally:
        holder.kill()
        holder.wait()
        for path in planted:
            if os.path.lexists(path) and os.lstat(path).st_uid == NOBODY:
                os.unlink(path)


def test_a_world_writable_lock_dir_is_refused_and_a_planted_symlink_not_followed(site):
    shared = site / "shared-locks"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - the attack needs a world-writable directory
    precious = site / "rootonly" / "precious"
    precious.write_text("do not truncate")
    (site / "src" / "a.log").write_text("a")
    os.utime(site / "src" / "a.log", (time.time() - 10 * DAY,) * 2)
    args = _args(site, lock_dir=str(shared))
    as_user(["ln", "-s", str(precious), _old_lock_name(str(shared), args["source"], args["destination"])])
    result = run_tm(site / "work", args)
    assert result["failed"] is True and "lock_dir %s refused" % shared in result["msg"]
    assert "writable by it alone" in result["msg"]
    assert precious.read_text() == "do not truncate"
    assert (site / "src" / "a.log").exists()
