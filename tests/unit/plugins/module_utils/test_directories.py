"""Tests for _directories: the walk that never follows a planted symlink, on real temp dirs.

Owner changes need root; these tests keep the running user as owner and change modes, and the
functional layer (tests/functional/test_tier_directories_attacks.py) plants symlinks as a real
unprivileged user.
"""

from __future__ import annotations

import grp
import os
import pwd

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _directories as d
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout

ME = pwd.getpwuid(os.geteuid()).pw_name
MY_GROUP = grp.getgrgid(os.getegid()).gr_name


def entry(path, mode="0750", owner=ME, group=MY_GROUP):
    return {"path": str(path), "owner": owner, "group": group, "mode": mode}


def mode_of(path):
    return "%04o" % (os.stat(path).st_mode & 0o7777)


def test_plan_reports_create_change_and_ok_without_changing_anything(tmp_path):
    (tmp_path / "changed").mkdir(mode=0o755)
    os.chmod(tmp_path / "changed", 0o755)  # noqa: S103 - the test sets the mode it checks
    (tmp_path / "ok").mkdir()
    os.chmod(tmp_path / "ok", 0o750)  # noqa: S103 - the test sets the mode it checks
    results = d.plan([entry(tmp_path / "new" / "deep"), entry(tmp_path / "changed"), entry(tmp_path / "ok")])
    assert [(r["state"], r.get("changes")) for r in results] == [("create", None), ("change", ["mode"]), ("ok", [])]
    assert results[1]["before"] == {"owner": ME, "group": MY_GROUP, "mode": "0755"}
    assert not (tmp_path / "new").exists()
    assert mode_of(tmp_path / "changed") == "0755"


def test_apply_makes_parents_and_sets_the_mode_and_a_second_run_changes_nothing(tmp_path):
    outcome = d.run([entry(tmp_path / "a" / "b", mode="2750"), entry(tmp_path / "a" / "b" / "c", mode="0700")], False)
    assert outcome["changed"] is True
    assert mode_of(tmp_path / "a") == "0755"
    assert mode_of(tmp_path / "a" / "b") == "2750"
    assert mode_of(tmp_path / "a" / "b" / "c") == "0700"
    assert outcome["diff"]["before"].splitlines()[0] == "%s (absent)" % (tmp_path / "a" / "b")
    assert outcome["diff"]["after"].splitlines()[1] == "%s %s:%s 0700" % (tmp_path / "a" / "b" / "c", ME, MY_GROUP)
    again = d.run([entry(tmp_path / "a" / "b", mode="2750"), entry(tmp_path / "a" / "b" / "c", mode="0700")], False)
    assert again["changed"] is False
    assert again["diff"] == {"before": "", "after": ""}
    assert again["msg"] == "0 of 2 directories made or changed"


def test_check_mode_reports_an_owner_that_does_not_exist_yet_and_apply_refuses_it(tmp_path):
    outcome = d.run([entry(tmp_path / "x", owner="jts-no-such-user")], True)
    assert outcome["changed"] is True and outcome["directories"][0]["state"] == "create"
    assert not (tmp_path / "x").exists()
    (tmp_path / "x").mkdir()
    planned = d.run([entry(tmp_path / "x", owner="jts-no-such-user", mode="0755")], True)
    assert "owner" in planned["directories"][0]["changes"]
    with pytest.raises(d.DirectoryError, match=r"user jts-no-such-user .* does not exist"):
        d.run([entry(tmp_path / "x", owner="jts-no-such-user")], False)
    with pytest.raises(d.DirectoryError, match="group jts-no-such-group"):
        d.run([entry(tmp_path / "x", group="jts-no-such-group")], False)


def test_numeric_owner_and_group_are_ids(tmp_path):
    outcome = d.run([entry(tmp_path / "n", owner=str(os.geteuid()), group=str(os.getegid()))], False)
    assert outcome["directories"][0]["state"] == "create"
    assert os.stat(tmp_path / "n").st_uid == os.geteuid()


def test_a_symlink_in_a_directory_others_can_write_is_refused_before_any_change(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - the test sets the mode it checks
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.chmod(victim, 0o755)  # noqa: S103 - the test sets the mode it checks
    os.symlink(victim, shared / "logs")
    first = tmp_path / "first"
    with pytest.raises(d.DirectoryError, match="component 'logs' is a symlink") as caught:
        d.run([entry(first), entry(shared / "logs", mode="0700")], False)
    assert caught.value.details == {"directory": str(shared / "logs")}
    assert mode_of(victim) == "0755"
    assert not first.exists()  # the refusal came before any change
    with pytest.raises(d.DirectoryError):
        d.run([entry(shared / "logs" / "below")], False)
    assert os.listdir(victim) == []


def test_a_file_where_a_directory_should_be_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(d.DirectoryError, match="is not a directory"):
        d.run([entry(tmp_path / "file" / "sub")], False)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root's symlinks in root's directories are trusted")
def test_a_symlink_only_root_can_have_placed_is_followed(tmp_path):
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the test sets the mode it checks
    real = tmp_path / "real"
    real.mkdir()
    os.symlink("real", tmp_path / "alias")
    outcome = d.run([entry(tmp_path / "alias" / "svc", mode="0700")], False)
    assert outcome["directories"][0]["state"] == "create"
    assert mode_of(real / "svc") == "0700"


def test_a_loop_of_symlinks_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(d, "_trusted_link", lambda fd, name: True)
    os.symlink("b", tmp_path / "a")
    os.symlink("a", tmp_path / "b")
    with pytest.raises(d.DirectoryError, match="too many symlinks"):
        d.run([entry(tmp_path / "a" / "x")], True)


def test_the_time_limited_run_does_the_work_in_a_child_and_reports_refusals(tmp_path):
    outcome = d.run([entry(tmp_path / "t", mode="0711")], False, timeout=30)
    assert outcome["changed"] is True and mode_of(tmp_path / "t") == "0711"
    (tmp_path / "f").write_text("x")
    with pytest.raises(d.DirectoryError, match="not a directory") as caught:
        d.run([entry(tmp_path / "f")], False, timeout=30)
    assert caught.value.details == {"directory": str(tmp_path / "f")}


def test_a_run_that_does_not_return_in_time_fails_naming_the_directories(monkeypatch):
    def stalled(func, args, timeout):
        raise ProbeTimeout("no answer")

    monkeypatch.setattr(d, "call_with_timeout", stalled)
    with pytest.raises(d.DirectoryError, match=r"not done within 2 s .*: /mnt/nas/a"):
        d.run([{"path": "/mnt/nas/a"}], False, timeout=2)


# --- the review's findings: each test failed on the code before its fix ---

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory to another user")


@needs_root
@pytest.mark.parametrize("owner, mode", [(65534, 0o755), (0, 0o777)], ids=["a-user-owns-it", "others-may-write-it"])
def test_a_root_symlink_past_a_directory_another_user_controls_is_refused(tmp_path, owner, mode):
    # the user can rename root's directory (with root's link in it) into the listed path
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the test sets the mode it checks
    svc = tmp_path / "svc"
    svc.mkdir()
    os.chown(svc, owner, owner)
    os.chmod(svc, mode)
    (svc / "data").mkdir(mode=0o755)
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o755)
    os.symlink(str(victim), svc / "data" / "logs")
    with pytest.raises(d.DirectoryError, match="component 'logs' is a symlink .*below %s" % svc) as caught:
        d.run([entry(svc / "data" / "logs" / "deep")], False)
    assert caught.value.details["directory"] == str(svc / "data" / "logs" / "deep")
    assert os.listdir(victim) == []


@pytest.mark.parametrize(
    "path, message",
    [("/data/a\0b", "NUL byte"), ("/data/../etc", r"'\.\.'"), ("/data/x/..", r"'\.\.'")],
)
def test_a_path_with_a_nul_byte_or_a_dotdot_component_is_refused(path, message):
    with pytest.raises(d.DirectoryError, match=message) as caught:
        d.run([{"path": path}], True)
    assert caught.value.details == {"directory": path}


def test_a_leading_double_slash_is_the_same_path():
    assert d.normalise([{"path": "//a//b/"}])[0]["path"] == "/a/b"
    with pytest.raises(d.DirectoryError, match="/a is listed twice"):
        d.normalise([{"path": "//a", "mode": "0750"}, {"path": "/a", "mode": "0755"}])


@pytest.mark.parametrize("field", ["owner", "group"])
@pytest.mark.parametrize(
    "value, message",
    [
        ("\u00b2", "does not exist"),
        ("a\0b", "NUL byte"),
        (str(2**32), "not a valid id"),
        ("4294967295", "not a valid id"),
    ],
    ids=["superscript-two", "nul", "2**32", "minus-one"],
)
def test_an_owner_or_group_that_is_no_id_fails_naming_it_before_anything_is_made(tmp_path, field, value, message):
    target = tmp_path / "x"
    with pytest.raises(d.DirectoryError, match=message) as caught:
        d.run([entry(target, **{field: value})], False)
    assert str(target) in caught.value.msg
    assert not target.exists()


def test_missing_parents_are_0755_whatever_the_umask_and_are_reported(tmp_path):
    old = os.umask(0o077)
    try:
        planned = d.run([entry(tmp_path / "p" / "q" / "r")], True)
        outcome = d.run([entry(tmp_path / "p" / "q" / "r")], False)
    finally:
        os.umask(old)
    parents = [str(tmp_path / "p"), str(tmp_path / "p" / "q")]
    assert planned["parents"] == parents and outcome["parents"] == parents
    assert mode_of(tmp_path / "p") == "0755" and mode_of(tmp_path / "p" / "q") == "0755"
    assert "%s (absent)\n" % (tmp_path / "p") in outcome["diff"]["before"]
    assert "%s %s:%s 0755\n" % (tmp_path / "p", ME, MY_GROUP) in outcome["diff"]["after"]
    assert outcome["msg"] == "1 of 1 directories made or changed, and 2 missing parents made"
    assert d.run([entry(tmp_path / "p" / "q" / "r")], False)["parents"] == []


@needs_root
def test_a_missing_parent_in_a_setgid_directory_is_still_root_root_0755(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chown(shared, 0, 65534)
    os.chmod(shared, 0o2775)  # noqa: S103 - the test sets the mode it checks
    d.run([entry(shared / "p" / "q", owner="root", group="root")], False)
    st = os.stat(shared / "p")
    assert (st.st_uid, st.st_gid, "%04o" % (st.st_mode & 0o7777)) == (0, 0, "0755")


def test_a_symlink_planted_between_plan_and_apply_reports_what_was_already_made(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # noqa: S103 - the test sets the mode it checks
    victim = tmp_path / "victim"
    victim.mkdir()
    real_plan = d.plan

    def plan_then_plant(entries, check_mode=True):
        results = real_plan(entries, check_mode)
        os.symlink(victim, shared / "logs")
        return results

    monkeypatch.setattr(d, "plan", plan_then_plant)
    with pytest.raises(d.DirectoryError, match="component 'logs' is a symlink") as caught:
        d.run([entry(tmp_path / "first" / "a"), entry(shared / "logs")], False)
    assert "nothing was changed" not in caught.value.msg
    assert "made or changed before this: %s, %s" % (tmp_path / "first", tmp_path / "first" / "a") in caught.value.msg
    assert caught.value.details["changed"] is True
    assert caught.value.details["made_or_changed"] == [str(tmp_path / "first"), str(tmp_path / "first" / "a")]
    assert os.listdir(victim) == []


def test_a_directory_swapped_for_a_symlink_between_mkdirat_and_openat_is_refused(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.mkdir()
    real_mkdir = os.mkdir

    def mkdir_then_swap(name, mode=0o777, *, dir_fd=None):
        real_mkdir(name, mode, dir_fd=dir_fd)
        if name == "b":
            os.rmdir(name, dir_fd=dir_fd)
            os.symlink(str(victim), name, dir_fd=dir_fd)

    monkeypatch.setattr(d.os, "mkdir", mkdir_then_swap)
    with pytest.raises(d.DirectoryError, match="component 'b' is a symlink") as caught:
        d.run([entry(tmp_path / "a" / "b" / "c")], False)
    assert "made or changed before this: %s" % (tmp_path / "a") in caught.value.msg
    assert caught.value.details["made_or_changed"] == [str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    assert os.listdir(victim) == []


@needs_root
def test_a_trusted_symlink_with_an_absolute_target_is_followed_from_the_root(tmp_path):
    os.chmod(tmp_path, 0o755)  # noqa: S103 - the test sets the mode it checks
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(str(real), tmp_path / "alias")
    outcome = d.run([entry(tmp_path / "alias" / "svc", mode="0700")], False)
    assert outcome["directories"][0]["state"] == "create"
    assert mode_of(real / "svc") == "0700"


@pytest.mark.parametrize("timeout", [0, 30], ids=["in-process", "in-a-child"])
def test_a_system_error_names_the_full_path(tmp_path, monkeypatch, timeout):
    def refused(fd, mode):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(d.os, "fchmod", refused)
    target = tmp_path / "nfs" / "dir"
    with pytest.raises(d.DirectoryError, match="%s.*Operation not permitted" % (tmp_path / "nfs")) as caught:
        d.run([entry(target)], False, timeout=timeout)
    assert caught.value.details["directory"] == str(target)
    assert caught.value.details["made_or_changed"] == [str(tmp_path / "nfs"), str(target)]


def test_a_time_limited_child_that_dies_fails_naming_the_directories(tmp_path, monkeypatch):
    def killed(entries, check_mode):
        os.kill(os.getpid(), 9)

    monkeypatch.setattr(d, "_outcome", killed)
    with pytest.raises(d.DirectoryError, match="ended without an answer.*%s" % (tmp_path / "k")):
        d.run([entry(tmp_path / "k")], False, timeout=30)


@pytest.mark.parametrize("timeout", [-1, float("nan"), float("inf")])
def test_a_negative_or_unbounded_timeout_is_refused(tmp_path, timeout):
    with pytest.raises(d.DirectoryError, match="timeout"):
        d.run([entry(tmp_path / "t")], False, timeout=timeout)
    assert not (tmp_path / "t").exists()
