# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus node_exporter textfiles: the exposition format, and the atomic write.

``render(prefix, metrics, samples)`` writes HELP and TYPE once per metric family that has samples,
then its samples, in the order of ``metrics`` (``(name, type, help)`` tuples); ``samples`` maps a
name to ``[(labels, value)]`` with labels as ``((name, value), ...)``. ``write_atomic`` replaces
the file through a temporary file in the same directory, so node_exporter never reads half a file.

Used by the storage health textfile (``_health_sinks``), the benchmark's (``_benchmark``) and the
nightly run report's (``_run_report``, written by ``_run_report_io``).
"""

from __future__ import annotations

import os
import tempfile


def escape_label(value):
    """Label value escaping of the exposition format: backslash, double quote, newline."""
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text):
    """HELP text escaping of the exposition format: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value, whole_floats_as_int=False):
    """A sample value: booleans as 1/0, integers as they are, floats by ``repr``.

    With ``whole_floats_as_int`` a float with no fraction is written as an integer (``3.0`` -> ``3``).
    """
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    value = float(value)
    if whole_floats_as_int and value.is_integer():
        return str(int(value))
    return repr(value)


def sample_line(full_name, labels, value, whole_floats_as_int=False):
    """One sample: ``name{label="value",...} value`` (no braces without labels)."""
    inner = "{%s}" % ",".join('%s="%s"' % (k, escape_label(v)) for k, v in labels) if labels else ""
    return "%s%s %s" % (full_name, inner, format_value(value, whole_floats_as_int))


def render(prefix, metrics, samples, whole_floats_as_int=False):
    """The textfile: per family in ``metrics`` with samples, HELP, TYPE, then its samples."""
    lines = []
    for name, kind, text in metrics:
        if not samples.get(name):
            continue
        full = prefix + name
        lines.append("# HELP %s %s" % (full, escape_help(text)))
        lines.append("# TYPE %s %s" % (full, kind))
        for labels, value in samples[name]:
            lines.append(sample_line(full, labels, value, whole_floats_as_int))
    return "\n".join(lines) + "\n"


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` atomically: temporary file in the same directory, fsync, rename."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
