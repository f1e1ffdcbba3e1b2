from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils._units import (
    UnitError,
    format_bytes,
    parse_age,
    parse_percent,
    parse_size,
    parse_size_or_percent,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("512", 512),
        (4096, 4096),
        ("1k", 1024),
        ("4m", 4 * 1024**2),
        ("4MiB", 4 * 1024**2),
        ("10G", 10 * 1024**3),
        ("10 GB", 10 * 1024**3),
        ("1.5T", int(1.5 * 1024**4)),
        (" 800g ", 800 * 1024**3),
    ],
)
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "G", "10X", "-5G", "ten", True, -1, "1.2.3G", "5%"])
def test_parse_size_rejects(bad):
    with pytest.raises(UnitError) as exc:
        parse_size(bad, what="hot_tier_volumes[0].size")
    assert "hot_tier_volumes[0].size" in str(exc.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("80", 80.0), ("80%", 80.0), (" 12.5 % ", 12.5), (90, 90.0), (0, 0.0), ("100", 100.0)],
)
def test_parse_percent(text, expected):
    assert parse_percent(text) == expected


@pytest.mark.parametrize("bad", ["101", "-1", "abc", "80%%", True, 100.5])
def test_parse_percent_rejects(bad):
    with pytest.raises(UnitError):
        parse_percent(bad)


def test_parse_size_or_percent():
    assert parse_size_or_percent("5%") == ("percent", 5.0)
    assert parse_size_or_percent("5G") == ("bytes", 5 * 1024**3)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7d", 7 * 86400),
        ("7", 7 * 86400),
        (7, 7 * 86400),
        ("12h", 43200),
        ("30m", 1800),
        ("2w", 14 * 86400),
        ("90s", 90),
        ("0", 0),
    ],
)
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("bad", ["7x", "d", "", "-1d", -3, False, "7 days"])
def test_parse_age_rejects(bad):
    with pytest.raises(UnitError) as exc:
        parse_age(bad, what="min_age")
    assert "min_age" in str(exc.value)


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (5 * 1024**3, "5.0 GiB"),
        (-2048, "-2.0 KiB"),
        (3 * 1024**6, "3072.0 PiB"),
    ],
)
def test_format_bytes(count, text):
    assert format_bytes(count) == text
