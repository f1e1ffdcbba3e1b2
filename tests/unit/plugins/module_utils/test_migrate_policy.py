"""Unit tests for tier_migrate's policy (_migrate_policy.py): parameters into a Policy, codec per file."""

from __future__ import annotations

import pytest
from migrate_helpers import DAY, DEFAULTS, _params

from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate as m
from ansible_collections.jts.tiered_storage.plugins.module_utils import _migrate_policy as m_policy


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"source": "relative/dir"}, "source: 'relative/dir' is not an absolute path"),
        ({"destination": "dst"}, "destination: 'dst' is not an absolute path"),
        ({"source": ""}, "source is required"),
        ({"older_than": "7x"}, "older_than: '7x' is not an age"),
        ({"settle_time": "soon"}, "settle_time: 'soon' is not an age"),
        ({"min_size": "lots"}, "min_size: 'lots' is not a size"),
        ({"max_bytes": "-1G"}, "max_bytes"),
        ({"min_free": "120%"}, "min_free"),
        ({"batch_bytes": "x"}, "batch_bytes"),
        ({"compression": "zstd", "compression_level": 30}, "compression_level: 30 is outside 1..22 for zstd"),
        ({"compression": "gzip", "compression_level": 0}, "compression_level: 0 is outside 1..9 for gzip"),
        ({"min_size": "2M", "max_size": "1M"}, "min_size '2M' is larger than max_size '1M'"),
        ({"max_files": -1}, "max_files: -1 is negative"),
        ({"journal": "j.jsonl"}, "journal: 'j.jsonl' is not an absolute path"),
        ({"destination_mount": "mnt"}, "destination_mount: 'mnt' is not an absolute path"),
    ],
)
def test_build_policy_rejects_bad_input(override, message):
    with pytest.raises(m.MigrateError) as exc:
        m.build_policy(_params("/src", "/dst", **override))
    assert message in str(exc.value)


def test_build_policy_defaults_and_conversions():
    pol = m.build_policy(
        dict(
            DEFAULTS,
            **{
                "source": "/a/b/",
                "destination": "/c",
                "older_than": "2w",
                "include": ["*.log"],
                "min_free": "5%",
                "max_bytes": "1G",
                "compression": "zstd",
                "compression_level": 19,
            },
        )
    )
    assert pol.source == b"/a/b"
    assert pol.older_than == 14 * DAY
    assert pol.settle == 600
    assert pol.include == [b"*.log"]
    assert pol.min_free == ("percent", 5.0)
    assert pol.max_bytes == 1 << 30
    assert pol.journal == b"/c/.jts-migrate/journal.jsonl"
    assert pol.batch_bytes == 256 << 20
    assert (pol.codec, pol.level, pol.mode, pol.age_stamp) == ("zstd", 19, "move", "mtime")


@pytest.mark.parametrize(
    ("rel", "codec", "expected"),
    [(b"a.log", "zstd", "zstd"), (b"a.log.gz", "zstd", "none"), (b"A.ZST", "gzip", "none"), (b"a.gz", "none", "none")],
)
def test_dest_codec_for(rel, codec, expected):
    assert m_policy.dest_codec_for(rel, codec) == expected
