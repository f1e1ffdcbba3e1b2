# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsing and formatting of sizes, ages, percentages and booleans shared by the modules.

Pure functions, standard library only, importable on Python 3.8.
"""

from __future__ import annotations

import re

# Binary units, as LVM and df use them. "k" and "kb" both mean KiB here: storage tools
# (lvcreate -L 10G, fallocate -l 1G) mean powers of two, and so do our inventories.
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "p": 1024**5,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_AGE_UNITS = {
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86400,
    "w": 7 * 86400,
}
_AGE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


class UnitError(ValueError):
    """A size, age, percentage or boolean that does not parse; the message names the value."""


def parse_bool(value, what="value"):
    """A bool from JSON or YAML-ish text (``true``, ``no``, ``1``); refuses anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0", ""):
        return False
    raise UnitError("%s: %r is not a boolean" % (what, value))


def parse_size(value, what="size"):
    """Return bytes for ``value`` such as ``10G``, ``512MiB``, ``4m``, ``1.5T`` or an int.

    A bare number is bytes. Raises UnitError naming ``what`` and the value on bad input.
    """
    if isinstance(value, bool):
        raise UnitError("%s: %r is not a size (examples: 10G, 512M, 1.5T)" % (what, value))
    if isinstance(value, int):
        if value < 0:
            raise UnitError("%s: %r is negative" % (what, value))
        return value
    match = _SIZE_RE.match(str(value))
    if not match:
        raise UnitError("%s: %r is not a size (examples: 10G, 512M, 1.5T)" % (what, value))
    number, unit = match.groups()
    return int(float(number) * _SIZE_UNITS[unit.lower()])


def parse_percent(value, what="percentage"):
    """Return a float for ``80``, ``80%`` or ``12.5%``; must lie in 0..100."""
    if isinstance(value, bool):
        raise UnitError("%s: %r is not a percentage" % (what, value))
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        match = _PERCENT_RE.match(str(value)) or re.match(r"^\s*(\d+(?:\.\d+)?)\s*$", str(value))
        if not match:
            raise UnitError("%s: %r is not a percentage (examples: 80, 80%%, 12.5%%)" % (what, value))
        number = float(match.group(1))
    if not 0 <= number <= 100:
        raise UnitError("%s: %r is outside 0..100" % (what, value))
    return number


def parse_size_or_percent(value, what="size"):
    """Return ``("percent", float)`` for ``5%`` or ``("bytes", int)`` for an absolute size."""
    text = str(value)
    if text.strip().endswith("%"):
        return "percent", parse_percent(text, what)
    return "bytes", parse_size(value, what)


def parse_age(value, what="age"):
    """Return seconds for ``7d``, ``12h``, ``30m``, ``2w``, ``90s`` or a bare number of days.

    A bare number means days, as in ``find -mtime``. Raises UnitError on ``7x`` and friends.
    """
    if isinstance(value, bool):
        raise UnitError("%s: %r is not an age (examples: 7d, 12h, 30m, 2w)" % (what, value))
    if isinstance(value, (int, float)):
        if value < 0:
            raise UnitError("%s: %r is negative" % (what, value))
        return float(value) * 86400
    match = _AGE_RE.match(str(value))
    if not match:
        raise UnitError("%s: %r is not an age (examples: 7d, 12h, 30m, 2w)" % (what, value))
    number, unit = match.groups()
    return float(number) * _AGE_UNITS[(unit or "d").lower()]


def format_bytes(count):
    """Human-readable binary size: 0 B, 1023 B, 1.0 KiB, 4.2 GiB."""
    count = int(count)
    sign = "-" if count < 0 else ""
    count = abs(count)
    if count < 1024:
        return "%s%d B" % (sign, count)
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024.0
        if value < 1024 or unit == "PiB":
            return "%s%.1f %s" % (sign, value, unit)
    return "%s%d B" % (sign, count)  # pragma: no cover - loop always returns
