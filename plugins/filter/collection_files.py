# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""List the files of this collection a storage host needs to run the lifecycle by itself."""

from __future__ import annotations

import os

from ansible.errors import AnsibleFilterError

SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".swp", "~")


def collection_files(root, parts):
    """Return ``[{"path", "src", "state"}]`` for ``parts`` (files or directories) under ``root``.

    ``path`` is relative to ``root``; directories come before their contents, parents of a
    listed file are included, caches are skipped. The order is stable (sorted).
    """
    root = os.path.realpath(root)
    entries = {}

    def add_parents(rel):
        parent = os.path.dirname(rel)
        while parent:
            entries.setdefault(parent, {"path": parent, "src": os.path.join(root, parent), "state": "directory"})
            parent = os.path.dirname(parent)

    for part in parts:
        top = os.path.join(root, part)
        if os.path.isfile(top):
            add_parents(part)
            entries[part] = {"path": part, "src": top, "state": "file"}
            continue
        if not os.path.isdir(top):
            raise AnsibleFilterError("collection_files: %s is neither a file nor a directory under %s" % (part, root))
        add_parents(part + "/x")
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            rel_dir = os.path.relpath(dirpath, root)
            entries[rel_dir] = {"path": rel_dir, "src": dirpath, "state": "directory"}
            for name in sorted(filenames):
                if name.endswith(SKIP_SUFFIXES):
                    continue
                rel = os.path.join(rel_dir, name)
                entries[rel] = {"path": rel, "src": os.path.join(dirpath, name), "state": "file"}
    return [entries[key] for key in sorted(entries)]


class FilterModule:
    def filters(self):
        return {"collection_files": collection_files}
