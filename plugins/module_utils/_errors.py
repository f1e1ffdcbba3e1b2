# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The root of the errors this collection reports, and the one way a module's main() fails.

Every error a module turns into a failed task derives from ``JtsError``: a message for the user
and ``details``, the fields that go into the failure result beside ``msg`` (a device, a path, a
return code). A family of errors subclasses it (``MigrateError(JtsError)``); an error that is
also a ``ValueError`` or a ``RuntimeError`` for its callers lists both bases.

``fail(module, exc)`` is the one failure path: it turns a ``JtsError`` (message and details) or
an ``OSError`` (the path and the system's words, never a traceback) into ``module.fail_json``.
"""

from __future__ import annotations


class JtsError(Exception):
    """A failure to report to the user: ``msg`` says what and why, ``details`` go into the result."""

    def __init__(self, msg="", **details):
        super().__init__(msg)
        self.msg = str(msg)
        self.details = details


def describe(exc, prefix=None):
    """The user-facing message of an exception: a JtsError's msg, an OSError's path and reason."""
    if isinstance(exc, JtsError):
        text = exc.msg
    elif isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else ""
        if isinstance(where, bytes):
            where = where.decode("utf-8", "backslashreplace")
        text = "%s: %s" % (where, exc.strerror or exc) if where != "" else str(exc.strerror or exc)
    else:
        text = str(exc)
    return "%s: %s" % (prefix, text) if prefix else text


def fail(module, exc, prefix=None, **extra):
    """Fail the task for ``exc``: its message, then its details, then ``extra`` (which win)."""
    details = dict(getattr(exc, "details", None) or {})
    details.update(extra)
    module.fail_json(msg=describe(exc, prefix), **details)
