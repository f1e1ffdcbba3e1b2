"""Unit tests for the append-only journal (_journal.py)."""

from __future__ import annotations

import os

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _journal as j


def test_round_trip_with_odd_names(tmp_path):
    journal = j.Journal(str(tmp_path / "state" / "journal.jsonl"))
    odd = b"/data/a b\nc\xff\xfe.log"
    journal.append([{"op": "move", "run": "r1", "src": j.encode_path(odd), "dst": "/x", "sha256": "0"}])
    journal.append([])
    records, damaged = journal.read()
    assert damaged == 0 and len(records) == 1
    assert j.decode_path(records[0]["src"]) == odd
    assert "time" in records[0]
    assert (tmp_path / "state" / "journal.jsonl").read_bytes().isascii()


def test_damaged_lines_are_counted_and_skipped(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"op": "move", "run": "r", "dst": "/a"}\n{"op": "mo\n[1, 2]\n\n')
    records, damaged = j.Journal(str(path)).read()
    assert len(records) == 1 and damaged == 2


def test_missing_journal_reads_empty(tmp_path):
    assert j.Journal(str(tmp_path / "none.jsonl")).read() == ([], 0)


def test_unwritable_journal(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(j.JournalError, match="cannot write journal"):
        j.Journal(str(tmp_path / "dir.jsonl")).append([{"op": "move"}])
    with pytest.raises(j.JournalError, match="cannot read journal"):
        j.Journal(str(tmp_path / "dir.jsonl")).read()


def test_encode_path_round_trips_bytes_that_are_not_utf8():
    assert os.fsencode(j.encode_path(b"\xff")) == b"\xff"
