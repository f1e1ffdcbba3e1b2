# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQL of the partition archival and the pure functions that read its answers.

Users: ``_pg_archive`` (pg_partition_archive).

Every script runs through ``PgCli.psql``: values arrive as psql variables (``:'name'`` is a quoted
literal, ``:"name"`` a quoted identifier), and a script that answers prints one JSON value. A
range bound is never pasted into SQL: ``parse_bound`` splits ``FOR VALUES FROM (...) TO (...)``
into its two literals, which go back as variables (or ``MINVALUE``/``MAXVALUE``).

The content checksum (``CHECKSUM_EXPR``) is ``rows:h0:h1``: the row count and two sums of
``hashtextextended`` of each row's text with seeds 0 and 1. A sum does not depend on the order in
which rows are read, so a table restored elsewhere (other physical order) gives the same value
when it holds the same rows; two seeds make an accidental equal sum of different rows far less
likely than one. Row text depends on session settings (time zone, date style, float digits), which
``_pg_cli`` fixes for every session.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import calendar
import datetime
import re

TIME_KEY_TYPES = ("date", "timestamp without time zone", "timestamp with time zone")
CHECKSUM_METHOD = "rows:sum(hashtextextended(row text, 0)):sum(hashtextextended(row text, 1)), order-independent"
CHECKSUM_EXPR = (
    "count(*) || ':' || coalesce(sum(hashtextextended(ROW(jts_row.*)::text, 0)), 0)"
    " || ':' || coalesce(sum(hashtextextended(ROW(jts_row.*)::text, 1)), 0)"
)

SERVER_SQL = """
SELECT json_build_object(
  'now', extract(epoch FROM now())::float8,
  'version', current_setting('server_version_num')::int,
  'database', current_database(),
  'encoding', pg_encoding_to_char(d.encoding),
  'collate', d.datcollate,
  'ctype', d.datctype,
  'tablespaces', (SELECT coalesce(json_agg(json_build_object(
      'name', t.spcname, 'location', pg_tablespace_location(t.oid)) ORDER BY t.spcname), '[]'::json)
    FROM pg_tablespace t))
FROM pg_database d WHERE d.datname = current_database();
"""

TABLE_SQL = """
SELECT json_build_object(
  'table', (SELECT json_build_object(
      'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::text,
      'strategy', pt.partstrat::text, 'natts', pt.partnatts,
      'key', CASE WHEN pt.partrelid IS NOT NULL THEN pg_get_partkeydef(c.oid) END,
      'key_type', (SELECT format_type(a.atttypid, NULL) FROM pg_attribute a
                   WHERE a.attrelid = c.oid AND pt.partattrs[0] <> 0 AND a.attnum = pt.partattrs[0]),
      'has_default', coalesce(pt.partdefid <> 0, false))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_partitioned_table pt ON pt.partrelid = c.oid
    WHERE c.oid = to_regclass(:'tbl')),
  'partitions', (SELECT coalesce(json_agg(json_build_object(
      'schema', n.nspname, 'name', c.relname, 'kind', c.relkind::text,
      'bound', pg_get_expr(c.relpartbound, c.oid),
      'pending', coalesce((to_jsonb(i) ->> 'inhdetachpending')::bool, false),
      'bytes', pg_total_relation_size(c.oid),
      'estimated_rows', greatest(c.reltuples, 0)::bigint,
      'tablespace', t.spcname) ORDER BY c.relname), '[]'::json)
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_tablespace t ON t.oid = c.reltablespace
    WHERE i.inhparent = to_regclass(:'tbl')));
"""

# Where a partition is now: missing, attached (perhaps with a detach pending) to which table, or a
# table of its own.
STATE_SQL = """
SELECT json_build_object(
  'exists', to_regclass(:'part') IS NOT NULL,
  'parent', (SELECT json_build_object('schema', pn.nspname, 'name', pc.relname)
             FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
             JOIN pg_namespace pn ON pn.oid = pc.relnamespace
             WHERE i.inhrelid = to_regclass(:'part')),
  'pending', (SELECT coalesce((to_jsonb(i) ->> 'inhdetachpending')::bool, false)
              FROM pg_inherits i WHERE i.inhrelid = to_regclass(:'part')),
  'bound', (SELECT pg_get_expr(c.relpartbound, c.oid) FROM pg_class c WHERE c.oid = to_regclass(:'part')));
"""

DETACH_SQL = {
    "concurrently": 'ALTER TABLE :"ts".:"tn" DETACH PARTITION :"ps".:"pn" CONCURRENTLY;\n',
    "plain": 'ALTER TABLE :"ts".:"tn" DETACH PARTITION :"ps".:"pn";\n',
    "finalize": 'ALTER TABLE :"ts".:"tn" DETACH PARTITION :"ps".:"pn" FINALIZE;\n',
}

CHECKSUM_SQL = 'SELECT to_json(%s) FROM :"ps".:"pn" AS jts_row;\n' % CHECKSUM_EXPR  # noqa: S608 - constants only

# The source partition is locked against every other session, its checksum taken again and
# compared with the restored copy's, and only when they are equal is it dropped, all in one
# transaction: the rows dropped are exactly the rows that were restored.
DROP_VERIFIED_SQL = (
    "BEGIN;\n"
    'LOCK TABLE :"ps".:"pn" IN ACCESS EXCLUSIVE MODE;\n'
    'SELECT %s AS jts_sum FROM :"ps".:"pn" AS jts_row \\gset\n'
    "SELECT :'jts_sum' = :'expected' AS jts_same \\gset\n"
    "\\if :jts_same\n"
    'DROP TABLE :"ps".:"pn";\n'
    "COMMIT;\n"
    "\\else\n"
    "ROLLBACK;\n"
    "\\endif\n"
    "SELECT json_build_object('dropped', :'jts_same'::bool, 'checksum', :'jts_sum');\n"
) % CHECKSUM_EXPR

CREATE_SCRATCH_SQL = (
    "CREATE DATABASE :\"scratch\" TEMPLATE template0 ENCODING :'enc' LC_COLLATE :'collate' LC_CTYPE :'ctype';\n"
)
DROP_SCRATCH_SQL = 'DROP DATABASE IF EXISTS :"scratch" WITH (FORCE);\n'
SCRATCH_PREPARE_SQL = 'CREATE SCHEMA IF NOT EXISTS :"ps";\nDROP TABLE IF EXISTS :"ps".:"pn";\n'
SCRATCH_DROP_TABLE_SQL = 'DROP TABLE IF EXISTS :"ps".:"pn";\n'
DATABASE_EXISTS_SQL = "SELECT to_json(EXISTS (SELECT 1 FROM pg_database WHERE datname = :'scratch'));\n"


def attach_sql(lo, hi):
    """ATTACH with the bounds as variables ``lo``/``hi``; None stands for MINVALUE/MAXVALUE."""
    return 'ALTER TABLE :"ts".:"tn" ATTACH PARTITION :"ps".:"pn" FOR VALUES FROM (%s) TO (%s);\n' % (
        "MINVALUE" if lo is None else ":'lo'",
        "MAXVALUE" if hi is None else ":'hi'",
    )


class BoundError(ValueError):
    """A partition bound this module does not handle (list, hash, multi-column, default)."""


_LITERAL = r"(MINVALUE|MAXVALUE|'(?:[^']|'')*')"
_BOUND_RE = re.compile(r"^FOR VALUES FROM \(%s\) TO \(%s\)$" % (_LITERAL, _LITERAL))


def parse_bound(text):
    """``FOR VALUES FROM ('a') TO ('b')`` -> ('a', 'b'); MINVALUE/MAXVALUE -> None."""
    match = _BOUND_RE.match(text or "")
    if not match:
        raise BoundError("not a single-column range bound: %r" % (text,))
    return tuple(_literal(part) for part in match.groups())


def _literal(token):
    if token in ("MINVALUE", "MAXVALUE"):
        return None
    return token[1:-1].replace("''", "'")


_TIME_RE = re.compile(
    r"^(?P<y>\d{4,})-(?P<m>\d\d)-(?P<d>\d\d)"
    r"(?: (?P<H>\d\d):(?P<M>\d\d):(?P<S>\d\d)(?P<f>\.\d+)?)?"
    r"(?P<tz>[+-]\d\d(?::?\d\d(?::?\d\d)?)?)?(?P<bc> BC)?$"
)


def parse_pg_time(text):
    """Seconds since the epoch of a date or timestamp as PostgreSQL prints it (ISO style, UTC).

    A time stamp without zone counts as UTC. ``infinity`` and years past 9999 are +inf, ``-infinity``
    and BC dates -inf. Raises ValueError for anything else.
    """
    if text == "infinity":
        return float("inf")
    if text == "-infinity":
        return float("-inf")
    match = _TIME_RE.match(text or "")
    if not match:
        raise ValueError("not a date or time stamp: %r" % (text,))
    if match.group("bc"):
        return float("-inf")
    year = int(match.group("y"))
    if year > 9999:
        return float("inf")
    moment = datetime.datetime(
        year,
        int(match.group("m")),
        int(match.group("d")),
        int(match.group("H") or 0),
        int(match.group("M") or 0),
        int(match.group("S") or 0),
    )
    seconds = calendar.timegm(moment.timetuple()) + float(match.group("f") or 0)
    zone = match.group("tz")
    if zone:
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = int(digits[0:2]) * 3600 + int(digits[2:4] or 0) * 60 + int(digits[4:6] or 0)
        seconds -= sign * offset
    return seconds


def qualified(schema, name):
    """``schema.name`` with each part quoted as an identifier when it needs it (like ``%I``)."""
    return "%s.%s" % (quote_ident(schema), quote_ident(name))


_PLAIN_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name):
    """An identifier as PostgreSQL's ``quote_ident`` prints it (keywords aside: always safe to quote)."""
    if _PLAIN_IDENT.match(name):
        return name
    return '"%s"' % name.replace('"', '""')


def check_table(entry, name):
    """The refusal for a table that is not range-partitioned by one time column, or None."""
    table = entry.get("table")
    if not table:
        return "table %s does not exist (option tables)" % name
    if table["kind"] != "p":
        return "table %s is not a partitioned table (relkind %s)" % (name, table["kind"])
    if table["strategy"] != "r":
        return "table %s is not partitioned by range (%s)" % (name, table["key"])
    if table["natts"] != 1 or not table.get("key_type"):
        return "table %s: its partition key (%s) is not one column" % (name, table["key"])
    if table["key_type"] not in TIME_KEY_TYPES:
        return "table %s: its partition key %s is of type %s, not a date or time stamp" % (
            name,
            table["key"],
            table["key_type"],
        )
    return None


def expired_partitions(partitions, now, retention_seconds):
    """Split partitions into (expired, skipped): expired ones end (upper bound, exclusive) at or
    before ``now - retention_seconds``. Skipped ones carry a ``reason``; ones not yet due are left out.

    Each returned partition is a copy with ``lo``, ``hi`` (bound literals, None for MIN/MAXVALUE)
    and ``upper_epoch`` added.
    """
    cutoff = now - retention_seconds
    expired, skipped = [], []
    for part in partitions:
        item = dict(part)
        if item.get("kind") == "p":
            skipped.append(dict(item, reason="sub-partitioned; archive its own partitions instead"))
            continue
        if item.get("bound") == "DEFAULT":
            continue
        try:
            item["lo"], item["hi"] = parse_bound(item.get("bound"))
            upper = float("inf") if item["hi"] is None else parse_pg_time(item["hi"])
        except ValueError as exc:
            skipped.append(dict(item, reason=str(exc)))
            continue
        if upper <= cutoff:
            item["upper_epoch"] = upper
            expired.append(item)
    return expired, skipped


_UNSAFE = re.compile(rb"[^A-Za-z0-9_.-]")


def safe_name(text):
    """A file-name component for a database, schema or table name: bytes outside ``[A-Za-z0-9_.-]``
    become ``%XX``, and so does a leading dot (never ``.``, ``..`` or a hidden file)."""
    raw = text.encode("utf-8", "surrogateescape")
    out = _UNSAFE.sub(lambda m: b"%%%02X" % m.group(0)[0], raw).decode("ascii")
    if out.startswith("."):
        out = "%2E" + out[1:]
    return out or "%00"


PARTITION_OPS = ("detach", "archive", "drop", "reattach", "missing", "restore")


def in_flight(records, port, database):
    """The journal's partitions of this database whose last record says a detach or an archive
    began and no end (drop, re-attach, missing) followed: {partition: last record}."""
    last = {}
    for record in records:
        if record.get("op") in PARTITION_OPS and record.get("port") == port and record.get("database") == database:
            last[record["partition"]] = record
    return {name: rec for name, rec in last.items() if rec["op"] in ("detach", "archive")}


def held(records, port, database, now):
    """Partitions brought back by a restore whose hold has not ended: {partition: hold end (epoch)}."""
    last = {}
    for record in records:
        if record.get("op") in PARTITION_OPS and record.get("port") == port and record.get("database") == database:
            last[record["partition"]] = record
    return {
        name: rec.get("hold_until", 0)
        for name, rec in last.items()
        if rec["op"] == "restore" and rec.get("hold_until", 0) > now
    }


def stale_scratch(records, port):
    """Scratch databases the journal says were created and not dropped (a run killed mid-way)."""
    state = {}
    for record in records:
        if record.get("op") in ("scratch", "scratch_dropped") and record.get("port") == port:
            state[record["name"]] = record["op"]
    return sorted(name for name, op in state.items() if op == "scratch")


def last_archive(records, port, database, partition, dump_name=None):
    """The newest ``archive`` record of ``partition`` (and of a dump of that file name, if given)."""
    found = None
    for record in records:
        if (
            record.get("op") == "archive"
            and record.get("port") == port
            and record.get("database") == database
            and record.get("partition") == partition
            and (dump_name is None or record.get("dump", "").rsplit("/", 1)[-1] == dump_name)
        ):
            found = record
    return found


__all__ = [
    "CHECKSUM_METHOD",
    "BoundError",
    "attach_sql",
    "check_table",
    "expired_partitions",
    "held",
    "in_flight",
    "last_archive",
    "parse_bound",
    "parse_pg_time",
    "qualified",
    "quote_ident",
    "safe_name",
    "stale_scratch",
]
