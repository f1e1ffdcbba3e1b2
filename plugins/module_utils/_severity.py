# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Severities of what the checks find, as Nagios/Icinga and the alerts name them.

``ok`` < ``warning`` < ``unknown`` < ``critical`` (``SEVERITY_RANK``: an unknown is worse than a
warning, because nothing was looked at); ``EXIT_CODES`` are the plugin exit codes of each. Used by
the storage health check (``_health*``, ``_freshness_check``) and the report sinks (``_sinks``).
Standard library only, importable on Python 3.8.
"""

from __future__ import annotations

SEVERITY_RANK = {"ok": 0, "warning": 1, "unknown": 2, "critical": 3}
EXIT_CODES = {"ok": 0, "warning": 1, "critical": 2, "unknown": 3}


def worst(statuses):
    """The worst of ``statuses`` (``ok`` when there is none)."""
    best = "ok"
    for status in statuses:
        if SEVERITY_RANK[status] > SEVERITY_RANK[best]:
            best = status
    return best
