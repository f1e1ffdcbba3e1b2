# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An append-only JSON-lines journal of completed moves, flushed to disk before sources go.

Each line is one JSON object. Paths are stored as ``os.fsdecode`` strings and written with
``ensure_ascii``, so names with bytes that are not UTF-8 survive the round trip (they become
``\\udcXX`` escapes and ``os.fsencode`` turns them back into the same bytes).

Records used by tier_migrate:

* ``{"op": "move"|"copy", "run": ID, "src": ..., "dst": ..., "size": N, "sha256": ..., "codec": ...}``
* ``{"op": "undo", "run": ID, "dst": ...}`` once a file was put back.

A line cut short by a crash is ignored when reading (and reported as ``damaged``); the next
append starts on a new line, so the record after it is kept whole.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._tree import UnsafePath, append_private, read_private


class JournalError(JtsError):
    """The journal cannot be read or written; the message names the file."""


def encode_path(path):
    return os.fsdecode(path)


def decode_path(text):
    return os.fsencode(text)


class Journal:
    """Append records with one fsync per batch; read them back.

    The journal's directory must belong to this user and be writable by it alone; it is reached
    without following symlinks (see ``_tree.open_private_dir``).
    """

    def __init__(self, path):
        self.path = path

    def append(self, records):
        """Append ``records`` (dicts) and flush them to disk before returning."""
        if not records:
            return
        now = round(time.time(), 3)
        lines = []
        for record in records:
            rec = dict(record)
            rec.setdefault("time", now)
            lines.append(json.dumps(rec, ensure_ascii=True, sort_keys=True))
        data = ("\n".join(lines) + "\n").encode("ascii")
        try:
            append_private(self.path, data)
        except UnsafePath as exc:
            raise JournalError("journal %s refused: %s" % (_show(self.path), exc)) from exc
        except OSError as exc:
            raise JournalError("cannot write journal %s: %s" % (_show(self.path), exc.strerror or exc)) from exc

    def read(self):
        """Return (records, damaged_line_count). A missing journal reads as empty."""
        records = []
        damaged = 0
        try:
            data = read_private(self.path)
        except FileNotFoundError:
            return [], 0
        except UnsafePath as exc:
            raise JournalError("journal %s refused: %s" % (_show(self.path), exc)) from exc
        except OSError as exc:
            raise JournalError("cannot read journal %s: %s" % (_show(self.path), exc.strerror or exc)) from exc
        for raw in data.split(b"\n"):
            raw = raw.strip()
            if not raw:
                continue
            try:
                rec = json.loads(raw.decode("ascii"))
            except (ValueError, UnicodeDecodeError):
                damaged += 1
                continue
            if isinstance(rec, dict) and "op" in rec:
                records.append(rec)
            else:
                damaged += 1
        return records, damaged


def _show(path):
    return os.fsdecode(path)


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
        if rec.get("op") == "undo" and rec.get("run") == run_id:
            undone.add(rec.get("dst"))
    result = {}
    for rec in records:
        if rec.get("op") in ("move", "copy") and rec.get("run") == run_id and rec.get("dst") not in undone:
            result[rec["dst"]] = rec
    return list(result.values())
