"""nas_archive's rsync output (_nas_archive_rsync): itemized lines, deletions, the --stats block."""

from __future__ import annotations

import pytest

from ansible_collections.jts.tiered_storage.plugins.module_utils import _nas_archive_rsync as rs

# --------------------------------------------------------------------------- rsync output

RSYNC_OUT = """\
created directory /mnt/nas/x
*deleting   0 olddir/z
*deleting   0 olddir/
*deleting   0 a file with  spaces
.d..t...... 4,096 ./
>f.st...... 1,234,567 data/big file.csv
>f+++++++++ 6 new
cd+++++++++ 4096 sub/
cL+++++++++ 7 sub/link -> ../new
hf+++++++++ 6 sub/hard => new
.f...p..... 10 mode-only
.f          10 unchanged-listed
>f..tpog.ax 3 all-attrs
skipping non-regular file "dev/null"

Number of files: 1,007 (reg: 1,000, dir: 6, link: 1)
Number of created files: 4 (reg: 2, dir: 1, link: 1)
Number of deleted files: 3 (reg: 2, dir: 1)
Number of regular files transferred: 3
Total file size: 5,000,000 bytes
Total transferred file size: 1.234.573 bytes
Literal data: 1,234,573 bytes
Matched data: 0 bytes
File list size: 0
Total bytes sent: 1,240,000
Total bytes received: 321

sent 1,240,000 bytes  received 321 bytes  2,480,642.00 bytes/sec
total size is 5,000,000  speedup is 4.03
"""


def test_parse_rsync_output():
    parsed = rs.parse_rsync_output(RSYNC_OUT)
    assert parsed["deleted"] == ["olddir/z", "olddir/", "a file with  spaces"]
    names = [n for _i, _s, n in parsed["items"]]
    assert names == [
        "./",
        "data/big file.csv",
        "new",
        "sub/",
        "sub/link -> ../new",
        "sub/hard => new",
        "mode-only",
        "unchanged-listed",
        "all-attrs",
    ]
    assert parsed["items"][1] == (">f.st......", 1234567, "data/big file.csv")
    assert parsed["stats"] == {
        "total_entries": 1007,
        "created_entries": 4,
        "deleted_entries": 3,
        "files_transferred": 3,
        "total_bytes": 5000000,
        "bytes_transferred": 1234573,
        "literal_bytes": 1234573,
        "matched_bytes": 0,
        "bytes_sent": 1240000,
        "bytes_received": 321,
    }
    assert rs.dest_entries_from_stats(parsed["stats"]) == 1007 - 4 + 3 - 1
    assert rs.source_entries_from_stats(parsed["stats"]) == 1006


def test_parse_rsync_output_edge_cases():
    assert rs.parse_rsync_output("") == {"items": [], "deleted": [], "stats": {}}
    assert rs.parse_rsync_output(None)["items"] == []
    # CRLF, an old rsync without %l on deletions, a file named like a stats line
    text = "*deleting gone.txt\r\n>f+++++++++ 5 Number of files: 3\r\nNumber of files: 2\r\n"
    parsed = rs.parse_rsync_output(text)
    assert parsed["deleted"] == ["gone.txt"]
    assert parsed["items"] == [(">f+++++++++", 5, "Number of files: 3")]
    assert parsed["stats"] == {"total_entries": 2}
    # --relative names lose their leading slash
    assert rs.parse_rsync_output(">f+++++++++ 1 /etc/fstab")["items"][0][2] == "etc/fstab"
    assert rs.dest_entries_from_stats({}) == 0


@pytest.mark.parametrize(
    "item, change, content",
    [
        (">f+++++++++", True, True),
        (">f.st......", True, True),
        ("cd+++++++++", True, True),
        ("hf+++++++++", True, True),
        ("*deleting", True, True),
        (".d..t......", True, False),
        (".f...p.....", True, False),
        (".f         ", False, False),
        (".d.........", False, False),
    ],
)
def test_itemize_classes(item, change, content):
    assert rs.is_change(item) is change
    assert rs.is_content_difference(item) is content
