# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's temporary-file registry: the directories where temporary copies were made,
recorded durably before each is made, so a run killed half-way is cleaned up by the next. Used by
``_migrate_runs`` and the transfer's staging.
"""

from __future__ import annotations

import json
import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._journal import decode_path, encode_path
from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_policy import (
    TMP_PREFIX,
    TMP_SUFFIX,
)
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import (
    Tree,
    UnsafePath,
    append_private,
    read_private,
    truncate_private,
)


class TempRegistry:
    """Remembers (durably) the directories where temporary files were made, to clean them later.

    One JSON line per directory (a tree root and the directory below it), so any name works; a
    directory is walked to again without following links before anything in it is removed.
    """

    def __init__(self, path):
        self.path = path
        self.known = set()

    def add(self, root, rel_dir):
        self.add_many(root, (rel_dir,))

    def add_many(self, root, rel_dirs):
        """Record the directories not recorded yet with one append (one flush)."""
        lines = []
        for rel_dir in rel_dirs:
            key = (root, rel_dir)
            if key in self.known:
                continue
            self.known.add(key)
            lines.append(json.dumps({"root": encode_path(root), "dir": encode_path(rel_dir)}, ensure_ascii=True))
        if lines:
            append_private(self.path, ("\n".join(lines) + "\n").encode("ascii"))

    def entries(self):
        found = set(self.known)
        try:
            data = read_private(self.path)
        except FileNotFoundError:
            data = b""
        for raw in data.split(b"\n"):
            try:
                rec = json.loads(raw.decode("ascii"))
                found.add((decode_path(rec["root"]), decode_path(rec["dir"])))
            except (ValueError, UnicodeDecodeError, KeyError, TypeError):
                continue  # a torn line: that directory is found by the next add
        return found

    def clean(self):
        """Remove our temporary files from every registered directory; return how many."""
        removed = 0
        by_root = {}
        for root, rel_dir in self.entries():
            by_root.setdefault(root, set()).add(rel_dir)
        for root, dirs in by_root.items():
            try:
                tree = Tree(root)
            except OSError:
                continue
            with tree:
                for rel_dir in dirs:
                    try:
                        handle = tree.acquire(rel_dir)
                    except (OSError, UnsafePath):
                        continue
                    try:
                        for name in os.listdir(handle.fd):
                            name = os.fsencode(name)
                            if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                                try:
                                    os.unlink(name, dir_fd=handle.fd)
                                    removed += 1
                                except FileNotFoundError:
                                    pass
                    finally:
                        tree.release(handle)
        truncate_private(self.path)
        self.known = set()
        return removed
