# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ClickHouse SQL for the clickhouse_tiering module: quoting, reading a table's TTL, the statements.

Pure functions, standard library only, Python 3.8. Every name the inventory gives goes into SQL
quoted (identifiers in backquotes, volume, disk, partition and part names as string literals, both
with backslash escapes), and the inventory's names are checked before that: a column must be a plain
identifier, because the module compares the server's own formatting of the TTL with what it wants.

The table TTL is read from ``system.tables.engine_full``, which the server formats itself, e.g.
``MergeTree PARTITION BY toYYYYMM(d) ORDER BY x TTL d + toIntervalDay(30) TO VOLUME 'cold' SETTINGS
index_granularity = 8192``. A small scanner finds the top-level ``TTL`` clause (outside brackets,
string literals and quoted identifiers), splits it at top-level commas and recognises the move
elements (``<expr> TO VOLUME|DISK '<name>'``) whose expression is ``<column> + toIntervalDay(N)``
(or ``<column> + INTERVAL N DAY`` as older servers print it). Every other element (DELETE, WHERE,
GROUP BY, RECOMPRESS) is kept as the server printed it.
"""

from __future__ import annotations

import re

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_OPEN = "([{"
_CLOSE = ")]}"
# <column> + toIntervalDay(N), <column> + INTERVAL N DAY; the column bare or in backquotes
_DAY_INTERVAL = re.compile(
    r"^(?:`(?P<quoted>(?:[^`\\]|\\.)+)`|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))\s*\+\s*"
    r"(?:toIntervalDay\(\s*(?P<n1>\d+)\s*\)|INTERVAL\s+(?P<n2>\d+)\s+DAY)$",
    re.IGNORECASE,
)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


class SQLError(JtsError, ValueError):
    """A name or a TTL the module will not put into SQL or cannot read; the message says which."""


def quote_identifier(name):
    """`name` with backslashes and backquotes escaped."""
    return "`" + str(name).replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_string(value):
    """'value' with backslashes and single quotes escaped."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def table_name(database, table):
    return quote_identifier(database) + "." + quote_identifier(table)


def check_column(column):
    if not isinstance(column, str) or not IDENTIFIER.match(column):
        raise SQLError(
            "column %r: give a plain column name (letters, digits, underscore) of type Date or DateTime" % (column,)
        )
    return column


def _tokens(text):
    """(start, end, kind, depth) of each token: kind ``word``, ``string``, ``ident``, ``comma``, ``other``.

    ``depth`` is the bracket depth the token is at (brackets themselves count as the outer depth).
    Raises SQLError for an unterminated literal or unbalanced brackets.
    """
    i, depth, n = 0, 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "'`\"":
            j = i + 1
            while j < n and text[j] != ch:
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                raise SQLError("unterminated %s in %r" % ("string" if ch == "'" else "identifier", text))
            yield i, j + 1, "string" if ch == "'" else "ident", depth
            i = j + 1
            continue
        if ch.isalnum() or ch == "_":
            j = i
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            yield i, j, "word", depth
            i = j
            continue
        if ch in _OPEN:
            yield i, i + 1, "other", depth
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                raise SQLError("unbalanced brackets in %r" % (text,))
            yield i, i + 1, "other", depth
        else:
            yield i, i + 1, "comma" if ch == "," else "other", depth
        i += 1
    if depth:
        raise SQLError("unbalanced brackets in %r" % (text,))


def table_ttl(engine_full):
    """The table TTL clause of ``engine_full`` without the keyword, or '' when the table has none."""
    start = end = None
    for begin, stop, kind, depth in _tokens(engine_full or ""):
        if kind != "word" or depth:
            continue
        word = engine_full[begin:stop]
        if start is None and word == "TTL":
            start = stop
        elif start is not None and word in ("SETTINGS", "COMMENT"):
            end = begin
            break
    if start is None:
        return ""
    return engine_full[start:end].strip()


def split_elements(clause):
    """The TTL clause's elements, split at top-level commas."""
    elements, begin = [], 0
    for start, _stop, kind, depth in _tokens(clause or ""):
        if kind == "comma" and depth == 0:
            elements.append(clause[begin:start].strip())
            begin = start + 1
    last = (clause or "")[begin:].strip()
    if last:
        elements.append(last)
    if any(not element for element in elements):
        raise SQLError("empty element in TTL %r" % (clause,))
    return elements


def _literal(token):
    return _UNESCAPE.sub(r"\1", token[1:-1])


def parse_move(element):
    """``(expression, kind, name)`` for a move element (kind ``volume`` or ``disk``), else None."""
    tokens = list(_tokens(element))
    if len(tokens) < 4:
        return None
    (to_b, to_e, to_k, to_d), (what_b, what_e, what_k, what_d), (lit_b, lit_e, lit_k, lit_d) = tokens[-3:]
    if (to_k, what_k, lit_k) != ("word", "word", "string") or to_d or what_d or lit_d:
        return None
    if element[to_b:to_e].upper() != "TO" or element[what_b:what_e].upper() not in ("VOLUME", "DISK"):
        return None
    return element[:to_b].strip(), element[what_b:what_e].lower(), _literal(element[lit_b:lit_e])


def parse_day_interval(expression):
    """``(column, days)`` for ``<column> + toIntervalDay(N)`` or ``<column> + INTERVAL N DAY``, else None."""
    match = _DAY_INTERVAL.match(expression.strip())
    if not match:
        return None
    column = match.group("bare") or _UNESCAPE.sub(r"\1", match.group("quoted"))
    return column, int(match.group("n1") or match.group("n2"))


def move_element(column, rule):
    """The TTL element of one move rule: ``\\`col\\` + INTERVAL N DAY TO VOLUME 'cold'``."""
    return "%s + INTERVAL %d DAY TO %s %s" % (
        quote_identifier(column),
        rule["days"],
        rule["kind"].upper(),
        quote_string(rule["name"]),
    )


def modify_ttl(database, table, elements):
    return "ALTER TABLE %s MODIFY TTL %s" % (table_name(database, table), ", ".join(elements))


def move_partition(database, table, partition_id, kind, name):
    return "ALTER TABLE %s MOVE PARTITION ID %s TO %s %s" % (
        table_name(database, table),
        quote_string(partition_id),
        kind.upper(),
        quote_string(name),
    )


def move_part(database, table, part, kind, name):
    return "ALTER TABLE %s MOVE PART %s TO %s %s" % (
        table_name(database, table),
        quote_string(part),
        kind.upper(),
        quote_string(name),
    )


def modify_policy(database, table, policy):
    return "ALTER TABLE %s MODIFY SETTING storage_policy = %s" % (table_name(database, table), quote_string(policy))


def kill_query(query_id):
    return "KILL QUERY WHERE query_id = %s ASYNC" % quote_string(query_id)


def table_row_query(columns, database, table):
    """``system.tables`` row of one table; the names go in as quoted string literals."""
    return "SELECT %s FROM system.tables WHERE database = %s AND name = %s" % (  # noqa: S608 (quoted)
        columns,
        quote_string(database),
        quote_string(table),
    )
