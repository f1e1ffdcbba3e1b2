# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""_health_verdicts: a mount's options against the layout (moved from tests/unit/plugins/modules/test_storage_health.py;
the usage thresholds stay there, beside the statvfs fake they use)."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._health_verdicts import options_missing


@pytest.mark.parametrize(
    ("wanted", "missing"),
    [
        (["noatime", "commit=60", "data=ordered", "_netdev", "nofail", "x-systemd.mount-timeout=30s"], []),
        (["rsize=1048576", "wsize=1048576", "hard", "vers=3"], []),  # rsize negotiated down: fine
        (["rsize=262144"], ["rsize=262144"]),  # more than asked is a change
        (["noatime", "nodev"], ["nodev"]),
        (["nfsvers=3"], []),
        (["vers=4"], ["vers=4"]),
    ],
)
def test_options_missing(wanted, missing):
    live = ["rw", "noatime", "commit=60", "relatime", "vers=3", "rsize=524288", "wsize=1048576", "hard"]
    assert options_missing(wanted, live) == missing


def test_vers4_matches_the_negotiated_minor_version():
    assert options_missing(["vers=4"], ["rw", "vers=4.2"]) == []
