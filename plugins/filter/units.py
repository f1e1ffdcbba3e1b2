# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that parse sizes and ages the same way the modules do (plugins/module_utils/_units.py)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_age, parse_size


def age_seconds(value, what="age"):
    """``'3d'`` -> ``259200.0``; a bare number is days."""
    try:
        return parse_age(value, what)
    except UnitError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def size_bytes(value, what="size"):
    """``'10G'`` -> ``10737418240`` (binary units)."""
    try:
        return parse_size(value, what)
    except UnitError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self):
        return {"age_seconds": age_seconds, "size_bytes": size_bytes}
