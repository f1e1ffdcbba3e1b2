# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capacity for a backup archive: how large a ``tar | zstd`` archive of a tree can get, and whether it fits.

Standard library only, Python 3.8. Pure apart from the walk of the tree. Used by the module
backup_capacity:

* ``estimate_bytes``: the tar stream of a tree (walked without following symlinks, on its own
  filesystem), times a ratio, plus zstd's worst case;
* ``capacity``: whether the tier stays under its critical threshold with each archive (as
  storage_health counts usage); ``refusal``: the message for one that does not fit.
"""

from __future__ import annotations

import os
import stat

from ansible_collections.jts.tiered_storage.plugins.module_utils._units import format_bytes

# tar: one 512-byte header per entry, data padded to 512 bytes, 10 KiB at the end; zstd's worst
# case on data it cannot compress is below 1/256 more (its compressBound), plus its frame.
TAR_BLOCK = 512
TAR_END = 10240
ZSTD_FRAME = 65536


def estimate_bytes(root, ratio=1.0):
    """How large a ``tar | zstd`` archive of ``root`` can get: the tar stream, times ``ratio``.

    Walks ``root`` without following symlinks and without leaving its filesystem (as tar
    ``--one-file-system``); each regular file counts its data (the allocated part of a sparse
    one, as ``tar --sparse`` stores it) rounded up to 512 bytes plus a header, every other entry
    a header. With ``ratio`` 1.0 (no compression assumed) the estimate is above what zstd writes,
    whose worst case on data it cannot compress is less than 1/256 more, also added.
    Returns ``(estimate, tar_bytes, entries)``.
    """
    root_dev = os.lstat(root).st_dev
    total, entries = TAR_END, 0
    stack = [root]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                entries += 1
                total += TAR_BLOCK
                if stat.S_ISREG(st.st_mode):
                    data = min(st.st_size, st.st_blocks * 512) if st.st_blocks is not None else st.st_size
                    total += -(-data // TAR_BLOCK) * TAR_BLOCK
                elif stat.S_ISDIR(st.st_mode) and st.st_dev == root_dev:
                    stack.append(entry.path)
    estimate = int(total * ratio) + total // 256 + ZSTD_FRAME
    return estimate, total, entries


def capacity(usage, estimates, critical):
    """Which archives fit: ``usage`` (statvfs dict of the tier), ``estimates`` [(name, bytes)] in order.

    The tier's used share is counted as storage_health counts it (df: used / (used + available));
    an archive is accepted while used + the accepted estimates + its own stay below ``critical``
    percent (storage_health alerts at or above it). Returns a list of dicts: name, estimate_bytes,
    used_bytes (before it), usable_bytes, percent_after, fits.
    """
    frsize = usage.get("f_frsize") or usage.get("f_bsize") or 0
    used = (usage["f_blocks"] - usage["f_bfree"]) * frsize
    usable = used + usage["f_bavail"] * frsize
    out = []
    for name, estimate in estimates:
        after = used + estimate
        percent = 100.0 * after / usable if usable > 0 else 100.0
        fits = usable > 0 and percent < critical and estimate <= usable - used
        out.append(
            {
                "name": name,
                "estimate_bytes": estimate,
                "used_bytes": used,
                "usable_bytes": usable,
                "percent_after": round(percent, 2),
                "fits": fits,
            }
        )
        if fits:
            used = after
    return out


def refusal(check, path, critical, threshold_name):
    """The message for an archive ``check`` (of ``capacity``) that does not fit: figures and the variable to change."""
    return (
        "%s: archive refused, nothing written: the tier of %s holds %s of %s usable; the archive may take up to %s, "
        "which would bring it to %.1f%%, at or above the critical threshold %g%% (%s). Free space on the tier "
        "(older archives: the retention variables) or raise %s"
        % (
            check["name"],
            path,
            format_bytes(check["used_bytes"]),
            format_bytes(check["usable_bytes"]),
            format_bytes(check["estimate_bytes"]),
            check["percent_after"],
            critical,
            threshold_name,
            threshold_name,
        )
    )
