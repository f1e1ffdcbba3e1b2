# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""storage_benchmark's settings and targets: sizes parsed, cross-field rules checked, tests ordered.

User: ``_benchmark_run.Benchmark`` (before anything is probed or written). The argument_spec
checks the types, choices and defaults; these are the rules it cannot say (sizes with units,
block sizes for direct I/O, a directory below its mount, each tier/name once). A broken rule is
a ``SettingsError`` whose message is the task's failure message.

Standard library only, Python 3.8.
"""

from __future__ import annotations

import os

from ansible_collections.jts.tiered_storage.plugins.module_utils._benchmark import TESTS
from ansible_collections.jts.tiered_storage.plugins.module_utils._errors import JtsError
from ansible_collections.jts.tiered_storage.plugins.module_utils._units import UnitError, parse_size


class SettingsError(JtsError):
    """The module's options do not make a benchmark; the message says which and why."""


def settings(p):
    """The sizes in bytes, the queue depth and the runtime, from the module's params ``p``."""
    try:
        out = {
            "seq_size": parse_size(p["seq_size"], "seq_size"),
            "seq_block_size": parse_size(p["seq_block_size"], "seq_block_size"),
            "rand_size": parse_size(p["rand_size"], "rand_size"),
            "rand_block_size": parse_size(p["rand_block_size"], "rand_block_size"),
        }
    except UnitError as exc:
        raise SettingsError(str(exc)) from None
    for name in ("seq_block_size", "rand_block_size"):
        if out[name] < 512 or out[name] % 512:
            raise SettingsError("%s must be a multiple of 512 bytes (direct I/O)" % name)
    for size, block in (("seq_size", "seq_block_size"), ("rand_size", "rand_block_size")):
        if out[size] < out[block]:
            raise SettingsError("%s must be at least %s" % (size, block))
    for name in ("iodepth", "runtime", "timeout", "probe_timeout"):
        if p[name] < 1:
            raise SettingsError("%s must be at least 1" % name)
    if not 0 < p["warning"] <= 100:
        raise SettingsError("warning must lie in 0..100 (got %s)" % p["warning"])
    if p["textfile"] and not (p["textfile"].startswith("/") and p["textfile"].endswith(".prom")):
        raise SettingsError("textfile %s must be an absolute path ending in .prom" % p["textfile"])
    out.update(iodepth=p["iodepth"], runtime=p["runtime"])
    return out


def targets(params):
    """The targets with normalised paths, their tests in run order (a read adds the write), their warning."""
    found = []
    for t in params["targets"]:
        t = dict(t)
        t["mount"] = os.path.normpath(t["mount"])
        t["directory"] = os.path.normpath(t["directory"] or t["mount"])
        if t["directory"] != t["mount"] and not t["directory"].startswith(t["mount"].rstrip("/") + "/"):
            raise SettingsError(
                "target %s/%s: directory %s is not below mount %s" % (t["tier"], t["name"], t["directory"], t["mount"])
            )
        tests = set(t["tests"])
        if tests & {"rand_read", "seq_read"}:
            tests.add("seq_write")  # a read reads what the write wrote: never holes
        t["tests"] = [name for name in TESTS if name in tests]
        if t["warning"] is None:
            t["warning"] = params["warning"]
        found.append(t)
    keys = [(t["tier"], t["name"]) for t in found]
    if len(set(keys)) != len(keys):
        raise SettingsError("targets: each tier/name must appear once (got %s)" % keys)
    return found


__all__ = ["SettingsError", "settings", "targets"]
