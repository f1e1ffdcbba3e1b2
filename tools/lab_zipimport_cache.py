# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bytecode cache for modules imported from zip files, installed in the lab VM image only.

Every Ansible module call ships its code as a zip (AnsiballZ) and Python compiles each module
imported from a zip from source, every time: zipimport never caches bytecode. On the lab VM
(QEMU TCG, no KVM) compiling ``ansible.module_utils.basic`` and its imports is about 3 s of
every task. This hook keeps the compiled code in a directory only root writes (entries are loaded
only when the directory and the entry are writable by their owner alone), keyed by a hash of the
source, so a second call of the same code skips the compile. A file that cannot be read or
written is simply compiled as before. It changes nothing but speed; production hosts do not
have it. ``tools/lab.py build`` copies this file into the image with a ``.pth`` that imports it.
"""

import marshal
import os
import zipimport

CACHE_DIR = os.environ.get("JTS_LAB_ZIPIMPORT_CACHE", "/var/cache/jts-lab-zipimport")
_compile = getattr(zipimport, "_compile_source", None)


def _trusted_stat(st):
    """Owned by root (or by us) and writable by nobody else."""
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def _trusted(directory):
    try:
        return _trusted_stat(os.stat(directory))
    except OSError:
        return False


def cached_compile(pathname, source):
    import hashlib

    key = hashlib.sha256(b"%d\0" % marshal.version + source).hexdigest()
    path = os.path.join(CACHE_DIR, key)
    try:
        if _trusted(CACHE_DIR):
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(fd, "rb") as handle:
                if _trusted_stat(os.fstat(handle.fileno())):
                    # only root can have written it (see _trusted), so it is as trusted as the source
                    return marshal.load(handle)  # noqa: S302
    except (OSError, EOFError, ValueError, TypeError):
        pass
    code = _compile(pathname, source)
    if os.geteuid() == 0:
        tmp = "%s.%d.tmp" % (path, os.getpid())
        try:
            os.makedirs(CACHE_DIR, mode=0o755, exist_ok=True)
            with open(tmp, "wb") as handle:
                marshal.dump(code, handle)
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return code


def install():
    """Route zipimport's compile through the cache (no-op on a Python without the hook point)."""
    if _compile is not None and getattr(zipimport, "_compile_source", None) is _compile:
        zipimport._compile_source = cached_compile


install()
