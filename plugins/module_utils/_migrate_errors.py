# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's errors and how its paths appear in messages.

``MigrateError`` is a run-level refusal or failure (a ``JtsError``); ``DestinationFull`` the
destination running out of space mid-run. ``display`` shows a bytes path to people. Used by every
``_migrate_*`` file and the tier_migrate module.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError


class MigrateError(JtsError):
    """A run-level refusal or failure; nothing (more) was moved. The message says why."""


class DestinationFull(MigrateError):
    """The destination ran out of space mid-run."""


def display(path):
    """A printable form of a bytes path (bytes that are not UTF-8 shown as \\xNN)."""
    if isinstance(path, str):
        path = os.fsencode(path)
    return path.decode("utf-8", "backslashreplace")


class CopyError(JtsError):
    """A copy step failed; ``reason`` is a short, user-facing explanation."""

    def __init__(self, reason, errno_=None):
        super().__init__(reason)
        self.reason = reason
        self.errno = errno_


class CodecError(CopyError):
    """The compressor or decompressor failed (bad data, missing tool)."""


class MetadataError(CopyError):
    """The destination cannot keep some of the file's metadata (extended attributes, ACLs)."""
