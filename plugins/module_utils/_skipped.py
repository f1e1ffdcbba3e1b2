# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``Skipped``: the NAS or a mount is away or does not answer, so nothing was done.

An outcome, not an error: the module returns ``skipped: true`` (changed false) with the reason.
Standard library only, importable on Python 3.8. Raised by nas_archive's probes
(``_nas_archive_probe``) and by backup_retention (``_backup_retention``); caught by the modules
nas_archive and backup_retention.
"""

from __future__ import annotations


class Skipped(Exception):
    """The NAS or the destination mount is away or does not answer: nothing was done.

    ``missing`` names the end that is away, as the modules return it (``source``,
    ``destination_mount``, ``nas_host``), or None.
    """

    def __init__(self, reason, missing=None):
        super().__init__(reason)
        self.missing = missing


def absent(policy, reason, missing, error):
    """What a missing end is under ``policy.missing``: ``Skipped`` (skip) or ``error(reason)`` (fail)."""
    if policy.missing == "skip":
        return Skipped(reason, missing)
    return error(reason)
