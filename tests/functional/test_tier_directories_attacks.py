"""A service user's planted symlink never steers the tier roles' directory task (real user, real roles).

The hot tier gives each service directory to its service user. ``ansible.builtin.file`` (which the
roles used before) follows a symlink at the path: the user that owns ``<root>/postgres`` replaced
``logs`` with a symlink to a root-owned directory, and the next run made that directory the
user's, mode and all. The attacker here is a real second user (uid/gid 65534 through
``setpriv``); the role's ``directory.yml`` runs through ansible-playbook as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from as_ansible import module_cmd
from test_provision_safety import run_tasks

NOBODY = 65534
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give directories to another user"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv"),
]


def as_nobody(*argv):
    subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups", *argv], check=True)


def owner_mode(path):
    st = os.lstat(path)
    return st.st_uid, "%04o" % (st.st_mode & 0o7777)


@pytest.fixture
def base():
    """A root-owned directory the second user can reach (pytest's tmp_path is 0700)."""
    where = Path(tempfile.mkdtemp(prefix="jts-dirs-attack-", dir="/tmp"))
    os.chmod(where, 0o755)  # noqa: S103 - the second user must reach its own directory
    yield where
    shutil.rmtree(where, ignore_errors=True)


def hot_directories(base):
    root = base / "hot"
    variables = {
        "hot_tier_directory_root": str(root),
        "hot_tier_directories": [
            {"name": "svc", "owner": "65534", "group": "65534", "mode": "0750", "subdirs": ["logs"]}
        ],
    }
    return root, variables


def test_a_symlink_planted_by_the_service_user_is_refused_and_its_target_kept(tmp_path, base):
    root, variables = hot_directories(base)
    first = run_tasks(tmp_path, "hot_tier", ["directory.yml"], variables)
    assert first.returncode == 0, first.output
    assert owner_mode(root / "svc" / "logs") == (NOBODY, "0750")
    again = run_tasks(tmp_path, "hot_tier", ["directory.yml"], variables)
    assert again.returncode == 0 and "changed=0" in again.output, again.output

    victim = base / "victim"
    victim.mkdir()
    os.chmod(victim, 0o755)  # noqa: S103 - the test sets the mode it checks
    as_nobody("rm", "-r", str(root / "svc" / "logs"))
    as_nobody("ln", "-s", str(victim), str(root / "svc" / "logs"))
    attacked = run_tasks(tmp_path, "hot_tier", ["directory.yml"], variables)
    assert attacked.returncode != 0
    assert "Refusing %s" % (root / "svc" / "logs") in " ".join(attacked.output.split())
    assert owner_mode(victim) == (0, "0755")


def test_a_symlink_swapped_in_for_a_parent_is_not_followed(tmp_path, base):
    # the module alone: the parent the user owns becomes a symlink to a root-only directory
    root, _ = hot_directories(base)
    (root / "svc").mkdir(parents=True)
    os.chown(root / "svc", NOBODY, NOBODY)
    victim = base / "victim"
    victim.mkdir()
    os.chmod(victim, 0o700)
    as_nobody("ln", "-s", str(victim), str(root / "svc" / "data"))
    wanted = {"path": str(root / "svc" / "data" / "deep"), "owner": str(NOBODY), "group": str(NOBODY), "mode": "0777"}
    argv, env = module_cmd("tier_directories", tmp_path, {"directories": [wanted]})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "component 'data' is a symlink" in done.stdout, done.stdout
    assert os.listdir(victim) == [] and owner_mode(victim) == (0, "0700")


def test_root_s_link_moved_into_the_path_by_the_service_user_is_not_followed(tmp_path, base):
    # root's directory with root's link in it, renamed by the user that owns the parent
    root, _ = hot_directories(base)
    svc = root / "svc"
    svc.mkdir(parents=True)
    os.chown(svc, NOBODY, NOBODY)
    (svc / "old").mkdir(mode=0o755)
    victim = base / "victim"
    victim.mkdir()
    os.chmod(victim, 0o700)
    os.symlink(str(victim), svc / "old" / "logs")
    as_nobody("mv", str(svc / "old"), str(svc / "data"))
    wanted = {"path": str(svc / "data" / "logs" / "deep"), "owner": str(NOBODY), "group": str(NOBODY), "mode": "0777"}
    argv, env = module_cmd("tier_directories", tmp_path, {"directories": [wanted]})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    assert done.returncode != 0, done.stdout
    assert "component 'logs' is a symlink (uid 0) below %s" % svc in done.stdout, done.stdout
    assert os.listdir(victim) == [] and owner_mode(victim) == (0, "0700")
