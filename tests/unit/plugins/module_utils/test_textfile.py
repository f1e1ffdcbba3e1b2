# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from ansible_collections.jts.tiered_storage.plugins.module_utils import _textfile

METRICS = (
    ("up", "gauge", "1 when up.\nSecond \\ line."),
    ("none", "gauge", "No samples."),
    ("size", "gauge", "Bytes."),
)


def test_render_families_in_order_without_empty_ones():
    samples = {"size": [((("path", 'a"b\\c\nd'),), 3.0), ((), 2.5)], "up": [((), True)], "none": []}
    assert _textfile.render("jts_", METRICS, samples) == (
        "# HELP jts_up 1 when up.\\nSecond \\\\ line.\n"
        "# TYPE jts_up gauge\n"
        "jts_up 1\n"
        "# HELP jts_size Bytes.\n"
        "# TYPE jts_size gauge\n"
        'jts_size{path="a\\"b\\\\c\\nd"} 3.0\n'
        "jts_size 2.5\n"
    )
    assert 'jts_size{path="a\\"b\\\\c\\nd"} 3\n' in _textfile.render("jts_", METRICS, samples, whole_floats_as_int=True)


def test_format_value():
    assert [_textfile.format_value(v) for v in (False, 7, 0.5, 2.0)] == ["0", "7", "0.5", "2.0"]
    assert _textfile.format_value(2.0, whole_floats_as_int=True) == "2"
