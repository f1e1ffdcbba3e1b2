# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_directories' input, checked before anything is touched: paths, owners, groups and modes.

A path is absolute, without a NUL byte or a ``..`` component (``//x`` is ``/x``); an owner or
group is a name or an id chown(2) can set; a mode is octal text, or an int as YAML gives an
unquoted ``0750`` (an unquoted ``750`` is refused: YAML reads it as decimal). A path listed twice
with different settings is refused. Used by ``_directories``.

Standard library only, Python 3.8.
"""

from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError

# chown(2) reads (uid_t) -1 as "leave it", so the largest id is one less.
MAX_ID = 2**32 - 2
_OCTAL_DIGITS = frozenset("01234567")


class DirectoryError(JtsError):
    """A listed directory cannot be made or set safely; the message says what was changed before."""


def parse_mode(value, path):
    """An octal mode: ``"0750"``, ``"750"``, or an int as YAML gives an unquoted ``0750``.

    Like ``ansible.builtin.file``, an int is taken as given, except one that can only be a mode
    written without its leading zero: an unquoted ``750`` reaches the module as the decimal 750
    (mode ``01356``). Three octal digits from 512 up, or four that would set the setuid bit (which
    a directory ignores), are refused.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        mode = value
        digits = str(value)
        if set(digits) <= _OCTAL_DIGITS and (512 <= value <= 777 or 0o4000 <= value <= 0o7777):
            raise DirectoryError(
                'mode %d of %s is a number: YAML reads an unquoted %d as decimal (mode 0%o); quote it: "0%d"'
                % (value, path, value, value, value),
                directory=path,
            )
    else:
        text = str(value).strip()
        try:
            mode = int(text, 8)
        except ValueError:
            raise DirectoryError(
                "mode %r of %s is not an octal mode such as 0750" % (value, path), directory=path
            ) from None
    if not 0 <= mode <= 0o7777:
        raise DirectoryError("mode %r of %s is out of range (0000 to 7777)" % (value, path), directory=path)
    return mode


def is_number(text):
    return text.isascii() and text.isdigit()


def _account(value, default, kind, path):
    """The owner or group as text; refuses a NUL byte and a number that is no uid or gid."""
    text = str(value if value is not None else default)
    if "\0" in text:
        raise DirectoryError("%s %r of %s has a NUL byte" % (kind, text, path), directory=path)
    if is_number(text) and int(text) > MAX_ID:
        raise DirectoryError(
            "%s %s of %s is not a valid id (0 to %d)" % (kind, text, path, MAX_ID),
            directory=path,
        )
    return text


def components(path):
    return [part for part in path.split("/") if part and part != "."]


def _clean_path(raw):
    """``raw`` as ``/a/b``: leading ``//`` and ``.`` dropped; a NUL byte or a ``..`` refused."""
    text = str(raw or "")
    if "\0" in text:
        raise DirectoryError("path %r has a NUL byte" % text, directory=text)
    if not text.startswith("/"):
        raise DirectoryError("path %r is not absolute" % raw, directory=raw)
    parts = components(text)
    if ".." in parts:
        raise DirectoryError(
            "path %r has a '..' component; give the directory's path without it" % text, directory=text
        )
    return "/" + "/".join(parts)


def normalise(entries):
    """The entries as dicts with an absolute path, names, and an int mode; duplicates refused."""
    seen = {}
    wanted = []
    for entry in entries:
        path = _clean_path(entry.get("path"))
        item = {
            "path": path,
            "owner": _account(entry.get("owner"), "root", "owner", path),
            "group": _account(entry.get("group"), "root", "group", path),
            "mode": parse_mode(entry.get("mode", "0755"), path),
        }
        if path in seen and seen[path] != item:
            raise DirectoryError("%s is listed twice with different owner, group or mode" % path, directory=path)
        if path not in seen:
            seen[path] = item
            wanted.append(item)
    return wanted
