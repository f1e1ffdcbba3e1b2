# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's records in the journal (``_journal``) of completed moves.

* ``{"op": "move"|"copy", "run": ID, "src": ..., "dst": ..., "size": N, "sha256": ..., "codec": ...}``
* ``{"op": "rolled_back", "run": ID, "dst": ...}`` once a file was put back (``state: rolled_back``);
  journals written before 2026-11-29 say ``"op": "undo"``, which is read the same.

Standard library only, Python 3.8.
"""

from __future__ import annotations

# the ops of a record saying a file was put back: the one written now, and the older name
PUT_BACK = ("rolled_back", "undo")


def runs(records):
    """Run ids in the order they first appear."""
    seen = []
    for rec in records:
        run = rec.get("run")
        if rec.get("op") in ("move", "copy") and run not in seen:
            seen.append(run)
    return seen


def pending_undo(records, run_id):
    """The move/copy records of ``run_id`` not yet undone, one per destination, in order."""
    undone = set()
    for rec in records:
        if rec.get("op") in PUT_BACK and rec.get("run") == run_id:
            undone.add(rec.get("dst"))
    result = {}
    for rec in records:
        if rec.get("op") in ("move", "copy") and rec.get("run") == run_id and rec.get("dst") not in undone:
            result[rec["dst"]] = rec
    return list(result.values())
