"""Unit tests for the shared mount-option rules (_mount_options.py).

The filter (tests/unit/plugins/filter/test_mount_opts.py) and storage_health
(tests/unit/plugins/modules/test_storage_health.py) test them through their own wrappers; these
pin the shared contract: plain lists in, ValueError out.
"""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _mount_options as mo


def test_split_raises_value_error_naming_what():
    with pytest.raises(ValueError, match=r"tier hot: mounts\[0\].options: 3 is not a mount option"):
        mo.split_options(["noatime", 3], "tier hot: mounts[0].options")
    with pytest.raises(ValueError, match="neither a comma-separated string nor a list"):
        mo.split_options({"noatime": True})


@pytest.mark.parametrize(
    ("wanted", "live", "ignore", "missing"),
    [
        (["noatime", "_netdev", "x-systemd.automount", "nofail"], ["rw"], (), ["noatime"]),
        (["vers=4", "rsize=1048576"], ["vers=4.2", "rsize=524288"], (), []),
        (["rsize=65536"], ["rsize=1048576"], (), ["rsize=65536"]),
        (["nfsvers=3"], ["vers=3"], (), []),
        (["data=ordered", "commit=60"], ["rw"], mo.UNREPORTED_DEFAULTS, ["commit=60"]),
        (["data=ordered"], ["rw"], (), ["data=ordered"]),
    ],
)
def test_options_missing(wanted, live, ignore, missing):
    assert mo.options_missing(wanted, live, ignore) == missing
