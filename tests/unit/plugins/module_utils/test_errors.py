# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import errno

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError, describe, fail


class Failed(Exception):
    pass


class FakeModule:
    def __init__(self):
        self.failed = None

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Failed()


class Family(JtsError, ValueError):
    pass


def test_a_family_error_is_both_a_jts_error_and_its_other_base():
    exc = Family("bad size", device="/dev/x")
    assert isinstance(exc, JtsError) and isinstance(exc, ValueError)
    assert str(exc) == "bad size" and exc.msg == "bad size" and exc.details == {"device": "/dev/x"}


@pytest.mark.parametrize(
    "exc, prefix, expected",
    [
        (JtsError("refused"), None, "refused"),
        (JtsError("refused"), "tier_migrate", "tier_migrate: refused"),
        (OSError(errno.ENOENT, "No such file or directory", "/a/b"), None, "/a/b: No such file or directory"),
        (OSError(errno.EACCES, "Permission denied", b"/a/\xff"), "m", "m: /a/\\xff: Permission denied"),
        (OSError(errno.EIO, "Input/output error"), None, "Input/output error"),
        (RuntimeError("odd"), None, "odd"),
    ],
)
def test_describe(exc, prefix, expected):
    assert describe(exc, prefix) == expected


def test_fail_puts_details_then_extra_into_the_result():
    module = FakeModule()
    with pytest.raises(Failed):
        fail(module, JtsError("no", vg="vg0", rc=5), rc=7)
    assert module.failed == {"msg": "no", "vg": "vg0", "rc": 7}


def test_fail_on_an_os_error_names_the_path_without_a_traceback():
    module = FakeModule()
    with pytest.raises(Failed):
        fail(module, OSError(errno.ENOSPC, "No space left on device", "/w/x"), prefix="snapshot_archive")
    assert module.failed == {"msg": "snapshot_archive: /w/x: No space left on device"}
