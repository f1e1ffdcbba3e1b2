from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.filter.collection_files import collection_files
from ansible_collections.jts.tiered_storage.plugins.filter.units import age_seconds, size_bytes


def _tree(tmp_path):
    (tmp_path / "plugins/modules/__pycache__").mkdir(parents=True)
    (tmp_path / "plugins/modules/x.py").write_text("x")
    (tmp_path / "plugins/modules/__pycache__/x.cpython-311.pyc").write_text("c")
    (tmp_path / "plugins/modules/y.pyc").write_text("c")
    (tmp_path / "playbooks").mkdir()
    (tmp_path / "playbooks/lifecycle.yml").write_text("---\n")
    (tmp_path / "playbooks/site.yml").write_text("---\n")
    return tmp_path


def test_lists_parents_first_and_skips_caches(tmp_path):
    root = _tree(tmp_path)
    entries = collection_files(str(root), ["plugins", "playbooks/lifecycle.yml"])
    paths = [(e["path"], e["state"]) for e in entries]
    assert paths == [
        ("playbooks", "directory"),
        ("playbooks/lifecycle.yml", "file"),
        ("plugins", "directory"),
        ("plugins/modules", "directory"),
        ("plugins/modules/x.py", "file"),
    ]
    assert all(e["src"].startswith(str(root)) for e in entries)


def test_missing_part_is_an_error(tmp_path):
    with pytest.raises(AnsibleFilterError, match="nope"):
        collection_files(str(tmp_path), ["nope"])


def test_unit_filters():
    assert age_seconds("3d") == 3 * 86400
    assert size_bytes("1G") == 1024**3
    with pytest.raises(AnsibleFilterError, match="lifecycle_cleanup_temp_age"):
        age_seconds("7x", "lifecycle_cleanup_temp_age")
    with pytest.raises(AnsibleFilterError, match="is not a size"):
        size_bytes("big")
