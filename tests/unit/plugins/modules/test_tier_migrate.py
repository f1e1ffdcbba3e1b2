"""Module-level tests for jts.tiered_storage.tier_migrate (in-process, run_command not used)."""

from __future__ import annotations

import os
import time

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate, _migrate_stage
from ansible_collections.jts.tiered_storage.plugins.modules import tier_migrate

DAY = 86400


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A source with two old files, an empty destination, and the destination treated as mounted."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    for rel, data in (("a.log", b"alpha\n" * 100), ("sub/b.log", b"beta\n" * 50)):
        (src / rel).write_bytes(data)
        old = time.time() - 10 * DAY
        os.utime(src / rel, (old, old))
    real_preflight = _migrate.preflight

    def preflight(policy, mounts=None, stat_fn=None, root_dev=None):
        return real_preflight(policy, mounts=mounts, root_dev=-1)

    monkeypatch.setattr(_migrate, "preflight", preflight)
    args = {"source": str(src), "destination": str(dst), "settle_time": "0", "lock_dir": str(tmp_path / "lock")}
    return src, dst, args


def test_moves_and_reports(run_module, tree):
    src, dst, args = tree
    result = run_module(tier_migrate, dict(args, compression="gzip"), diff=True)
    assert result["changed"] is True
    assert (result["moved"], result["moved_bytes"], result["failed_count"]) == (2, 850, 0)
    assert result.commands == []
    assert (dst / "sub" / "b.log.gz").exists() and not (src / "a.log").exists()
    assert result["diff"]["before"] == "%s\n%s\n" % (src / "a.log", src / "sub" / "b.log")
    assert result["diff"]["after"].endswith("b.log.gz\n")
    again = run_module(tier_migrate, dict(args, compression="gzip"))
    assert again["changed"] is False and again["moved"] == 0


def test_check_mode_lists_and_changes_nothing(run_module, tree):
    src, dst, args = tree
    result = run_module(tier_migrate, args, check_mode=True)
    assert result["changed"] is True and result["moved"] == 2 and result["moved_bytes"] == 850
    assert sorted(os.listdir(src)) == ["a.log", "sub"] and os.listdir(dst) == []


def test_rollback_through_the_module(run_module, tree):
    src, dst, args = tree
    moved = run_module(tier_migrate, dict(args, compression="zstd"))
    result = run_module(tier_migrate, dict(args, state="rolled_back", run_id=moved["run_id"]))
    assert result["rolled_back"] == 2 and result["changed"] is True
    assert (src / "a.log").read_bytes() == b"alpha\n" * 100
    assert not (dst / "a.log.zst").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"older_than": "7x"}, "older_than: '7x' is not an age"),
        ({"source": "relative"}, "source: 'relative' is not an absolute path"),
        ({"compression": "gzip", "compression_level": 12}, "compression_level: 12 is outside 1..9"),
        # choices are the argument_spec's (build_policy no longer repeats them)
        ({"compression": "lz4"}, "value of compression must be one of: none, zstd, gzip, got: lz4"),
        ({"age_stamp": "btime"}, "value of age_stamp must be one of: mtime, atime, ctime, got: btime"),
        ({"mode": "swap"}, "value of mode must be one of: move, copy, got: swap"),
    ],
)
def test_bad_input_fails_before_anything_moves(run_module, tree, override, message):
    src, _dst, args = tree
    result = run_module(tier_migrate, dict(args, **override))
    assert result["failed"] is True and message in result["msg"]
    assert (src / "a.log").exists()


def test_destination_inside_source_is_refused(run_module, tree):
    src, _dst, args = tree
    result = run_module(tier_migrate, dict(args, destination=str(src / "sub")))
    assert result["failed"] is True and "is inside source" in result["msg"]
    assert (src / "a.log").exists()


def test_unmounted_destination_is_refused(run_module, tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "d").mkdir()
    root_dev = os.stat("/").st_dev
    if os.stat(tmp_path).st_dev != root_dev:
        pytest.skip("the temporary directory is not on the root filesystem here")
    result = run_module(tier_migrate, {"source": str(tmp_path / "s"), "destination": str(tmp_path / "d")})
    assert result["failed"] is True and "not on a mounted filesystem" in result["msg"]


def test_locked(run_module, tree):
    _src, _dst, args = tree
    policy = _migrate.build_policy(args)
    with _migrate.lock(policy, policy.source, policy.dest):
        result = run_module(tier_migrate, args)
    assert result["failed"] is True and result["locked"] is True and "is in use by another run" in result["msg"]


def test_destination_full_fails_with_counts(run_module, tree, monkeypatch):
    src, _dst, args = tree

    def full(*_a, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_migrate_stage, "copy_content", full)
    result = run_module(tier_migrate, dict(args, check_space=False))
    assert result["failed"] is True and "is full" in result["msg"]
    assert result["moved"] == 0 and (src / "a.log").exists()


def test_unreadable_file_is_a_warning_not_a_failure(run_module, tree, monkeypatch):
    _src, _dst, args = tree
    real_open = os.open

    def fake_open(path, flags, *a, **kw):
        if os.fsencode(path).endswith(b"a.log"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *a, **kw)

    warnings = []
    monkeypatch.setattr(AnsibleModule, "warn", lambda self, text: warnings.append(text))
    monkeypatch.setattr(os, "open", fake_open)
    result = run_module(tier_migrate, args)
    assert result.get("failed") is not True
    assert result["failed_count"] == 1 and result["moved"] == 1
    assert any("1 file(s) could not be moved" in w for w in warnings)


def test_unexpected_os_error(run_module, tree, monkeypatch):
    _src, _dst, args = tree

    def boom(*_a, **_kw):
        raise OSError(5, "Input/output error", "/dev/x")

    monkeypatch.setattr(_migrate, "select_files", boom)
    result = run_module(tier_migrate, args)
    assert result["failed"] is True and result["msg"] == "tier_migrate: /dev/x: Input/output error"


def test_argument_spec_matches_documentation():
    import yaml

    from ansible_collections.jts.tiered_storage.plugins.doc_fragments.tier_destination import ModuleDocFragment

    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    for name, option in yaml.safe_load(tier_migrate.DOCUMENTATION)["options"].items():
        doc[name] = dict(doc.get(name, {}), **option)  # as ansible-doc merges a fragment: the module's keys win
    assert set(doc) == set(tier_migrate.ARGUMENT_SPEC)
    for name, spec in tier_migrate.ARGUMENT_SPEC.items():
        assert doc[name]["type"] == spec["type"], name
        assert doc[name].get("default") == spec.get("default"), name
        assert doc[name].get("choices") == spec.get("choices"), name


def test_missing_skip_returns_a_skipped_result_naming_the_missing_end(run_module, tree):
    src, _dst, args = tree
    result = run_module(tier_migrate, dict(args, source=str(src) + "-gone", missing="skip"))
    assert result["skipped"] is True and result["changed"] is False
    assert result["missing"] == "source" and result["msg"] == "%s-gone does not exist" % src


def test_create_destination_makes_it_and_moves_into_it(run_module, tree):
    _src, dst, args = tree
    new = dst / "new" / "logs"
    checked = run_module(tier_migrate, dict(args, destination=str(new), create_destination=True), check_mode=True)
    assert checked["changed"] is True and checked["destination_created"] is True and not new.exists()
    moved = run_module(tier_migrate, dict(args, destination=str(new), create_destination=True))
    assert moved["destination_created"] is True and moved["moved"] == 2
    assert (new / "a.log").exists() and oct(os.stat(new).st_mode & 0o777) == "0o755"
    again = run_module(tier_migrate, dict(args, destination=str(new), create_destination=True))
    assert again["changed"] is False and again["destination_created"] is False
