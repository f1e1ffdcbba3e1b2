"""Tests for _migrate_gate: a missing end skipped (missing: skip), a missing destination made."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_gate as g
from ansible_collections.jts.tiered_storage.plugins.module_utils._directories import DirectoryError
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import MigrateError
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import build_policy
from ansible_collections.jts.tiered_storage.plugins.module_utils._skipped import Skipped
from ansible_collections.jts.tiered_storage.plugins.module_utils._timeout import ProbeTimeout


def policy(tmp_path, **extra):
    params = {"source": str(tmp_path / "src"), "destination": str(tmp_path / "dst"), "probe_timeout": 10}
    params.update(extra)
    return build_policy(params)


def mounted(*points):
    return [{"mount_point": os.fsencode(p)} for p in points]


def no_call(*args, **kwargs):
    raise AssertionError("not expected: %r" % (args,))


def test_by_default_the_gate_does_nothing(tmp_path):
    assert g.gate(policy(tmp_path), False, mounts=[], stat_fn=no_call, statfs_fn=no_call) is None


def test_a_missing_source_is_skipped_with_missing_skip_and_refused_otherwise(tmp_path):
    with pytest.raises(Skipped) as caught:
        g.gate(policy(tmp_path, missing="skip"), False, mounts=[])
    assert isinstance(caught.value, Skipped)
    assert caught.value.missing == "source" and str(caught.value) == "%s does not exist" % (tmp_path / "src")


def test_a_source_that_does_not_answer_goes_on_to_the_preflight(tmp_path):
    def stalled(path, timeout):
        raise ProbeTimeout("no answer")

    assert g.gate(policy(tmp_path, missing="skip"), False, mounts=[], stat_fn=stalled) is None


@pytest.mark.parametrize("answers", [False, True], ids=["not-in-the-mount-table", "statfs-does-not-answer"])
@pytest.mark.parametrize("end", ["destination_mount", "source_mount"])
def test_an_absent_tier_is_skipped_naming_its_end(tmp_path, answers, end):
    # the source exists: with source_mount, it is the empty mount point's directory on the root filesystem
    (tmp_path / "src").mkdir()
    tier = tmp_path / "tier"

    def statfs(path, timeout):
        assert path == os.fsencode(tier)
        raise ProbeTimeout("no answer")

    mounts = mounted(tier) if answers else mounted("/")
    with pytest.raises(Skipped) as caught:
        g.gate(policy(tmp_path, missing="skip", **{end: str(tier)}), False, mounts=mounts, statfs_fn=statfs)
    assert caught.value.missing == end
    assert str(caught.value) == "%s is not mounted (or did not answer in 10 s)" % tier


def test_with_missing_fail_an_absent_tier_refuses_making_the_destination(tmp_path):
    (tmp_path / "src").mkdir()
    nas = tmp_path / "nas"
    args = dict(missing="fail", destination_mount=str(nas), create_destination=True)
    with pytest.raises(MigrateError, match=r"is not mounted .*; nothing was moved"):
        g.gate(policy(tmp_path, **args), False, mounts=mounted("/"))
    assert not (tmp_path / "dst").exists()


def test_an_existing_destination_needs_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "dst").mkdir()
    assert g.gate(policy(tmp_path, create_destination=True), False, mounts=[], make_fn=no_call) is None


def test_check_mode_says_it_would_make_the_destination_and_makes_nothing(tmp_path):
    (tmp_path / "src").mkdir()
    result = g.gate(policy(tmp_path, create_destination=True), True, mounts=[], make_fn=no_call)
    assert result["changed"] is True and result["destination_created"] is True and result["moved"] == 0
    assert not (tmp_path / "dst").exists()


def test_the_destination_is_made_root_s_0755_through_the_safe_walk(tmp_path):
    (tmp_path / "src").mkdir()
    made = []
    result = g.gate(
        policy(tmp_path, create_destination=True),
        False,
        mounts=[],
        make_fn=lambda wanted, check, timeout: made.append((wanted, check, timeout)),
    )
    assert result == {"destination_created": True}
    assert made == [([{"path": str(tmp_path / "dst"), "owner": "root", "group": "root", "mode": "0755"}], False, 10)]


def test_a_destination_that_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "src").mkdir()

    def refuse(wanted, check, timeout):
        raise DirectoryError("Refusing %s: its component 'dst' is a symlink" % wanted[0]["path"])

    with pytest.raises(MigrateError, match=r"cannot make the destination: Refusing .*; nothing was moved"):
        g.gate(policy(tmp_path, create_destination=True), False, mounts=[], make_fn=refuse)


def test_a_mounted_source_tier_goes_on_and_missing_fail_leaves_the_source_tier_to_the_preflight(tmp_path):
    (tmp_path / "src").mkdir()
    warm = tmp_path / "warm"
    statfs_calls = []
    params = dict(missing="skip", source_mount=str(warm))
    assert (
        g.gate(policy(tmp_path, **params), False, mounts=mounted(warm), statfs_fn=lambda p, t: statfs_calls.append(p))
        is None
    )
    assert statfs_calls == [os.fsencode(warm)]
    # missing: fail checks nothing here: the preflight refuses a source that is not on its mount
    assert g.gate(policy(tmp_path, source_mount=str(warm)), False, mounts=[], statfs_fn=no_call) is None


def test_a_missing_source_is_skipped_as_the_source_whether_or_not_its_tier_is_there(tmp_path):
    # nothing to move either way: a missing source is not reported as a tier that is away
    with pytest.raises(Skipped) as caught:
        g.gate(
            policy(tmp_path, missing="skip", source_mount=str(tmp_path / "warm")), False, mounts=[], statfs_fn=no_call
        )
    assert caught.value.missing == "source"


@pytest.mark.parametrize("end", ["source_mount", "destination_mount"])
def test_a_tier_mounted_under_a_symlinked_path_is_there(tmp_path, end):
    """/data -> /srv/data: the kernel lists /srv/data/warm-storage; /data/warm-storage is that mount."""
    (tmp_path / "src").mkdir()
    real = tmp_path / "srv" / "tier"
    real.mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "srv")
    statfs_calls = []
    params = {"missing": "skip", end: str(tmp_path / "link" / "tier")}
    result = g.gate(
        policy(tmp_path, **params), False, mounts=mounted(real), statfs_fn=lambda p, t: statfs_calls.append(p)
    )
    assert result is None and len(statfs_calls) == 1


def test_a_tier_whose_path_does_not_resolve_in_time_is_away(tmp_path):
    (tmp_path / "src").mkdir()
    nas = tmp_path / "nas"

    def stalled(path, timeout):
        raise ProbeTimeout("no answer")

    with pytest.raises(Skipped) as caught:
        g.gate(
            policy(tmp_path, missing="skip", destination_mount=str(nas)),
            False,
            mounts=mounted(nas),
            statfs_fn=no_call,
            realpath_fn=stalled,
        )
    assert caught.value.missing == "destination_mount"
