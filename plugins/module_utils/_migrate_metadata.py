# Copyright (c) 2026 JTS infrastructure team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""tier_migrate's metadata copy: owner, group, extended attributes (``user.*``, ``security.*``,
``trusted.*`` as root, POSIX ACLs), mode and times, from a source file to its copy. What the
destination refuses fails the file (``MetadataError``) unless the caller allows dropping it; a
dropped POSIX ACL never leaves the mode wider than the owning group's ACL entry. Used by
``_migrate_stage`` and ``_tree`` users through ``_migrate_copy``.
"""

from __future__ import annotations

import errno
import os
import stat
import struct

from ansible_collections.jts.tiered_storage.plugins.module_utils._migrate_errors import (
    MetadataError,
)

ACL_ACCESS = "system.posix_acl_access"
ACL_DEFAULT = "system.posix_acl_default"
# Never copied: written by the kernel (evm), obsolete XFS forms of ACLs and capabilities (the
# system.* ones are copied instead), and filesystem properties that are the destination's own
# business (btrfs.compression): the same list as /etc/xattr.conf of the attr package, plus btrfs.
_NOT_COPIED = ("security.evm", "trusted.SGI_", "xfsroot.", "afs.", "btrfs.")
# Copied where the destination takes it, else left to it: the destination's policy or mount
# labels the file (as cp/mv do with the SELinux context).
_BEST_EFFORT = ("security.selinux",)
_NFS4_ACLS = ("system.nfs4_acl", "system.nfs4_dacl", "system.nfs4_sacl")
_REFUSALS = {
    errno.EOPNOTSUPP: "not supported by the destination",
    errno.ENOTSUP: "not supported by the destination",
    errno.EPERM: "not permitted",
    errno.EACCES: "not permitted",
    errno.EINVAL: "refused by the destination",
    errno.E2BIG: "too large for the destination",
    errno.ENOSPC: "too large for the destination",
    errno.ERANGE: "too large for the destination",
}
_FULL_BELOW = 1 << 20  # ENOSPC with less free than this is a full filesystem, not a size limit
_ACL_GROUP_OBJ, _ACL_MASK = 0x04, 0x10


def acl_group_bits(value):
    """rwx bits (0-7) of the owning group in a ``system.posix_acl_access`` value, or None.

    The owning group's entry (ACL_GROUP_OBJ) limited by the mask when there is one: what the
    group could really do. With an ACL the mode's group bits show the mask (all named users
    and groups), so they are not a safe mode once the ACL is gone.
    """
    if len(value) < 4 or (len(value) - 4) % 8 or struct.unpack_from("<I", value)[0] != 2:
        return None
    group = mask = None
    for offset in range(4, len(value), 8):
        tag, perm, _ident = struct.unpack_from("<HHI", value, offset)
        if tag == _ACL_GROUP_OBJ:
            group = perm & 7
        elif tag == _ACL_MASK:
            mask = perm & 7
    if group is None:
        return None
    return group if mask is None else group & mask


def nfs4_acl_is_trivial(name, value):
    """True when an NFSv4 ACL (``system.nfs4_acl``/``_dacl``/``_sacl``, XDR) says no more than the mode.

    Only allow/deny entries for OWNER@, GROUP@ and EVERYONE@ without inheritance (an NFS
    server derives those from the mode), and no audit entries: losing such an ACL loses nothing.
    """
    try:
        offset = 0 if name == "system.nfs4_acl" else 4  # dacl and sacl start with a flag word
        (count,) = struct.unpack_from(">I", value, offset)
        offset += 4
        if name == "system.nfs4_sacl" and count:
            return False
        for _ in range(count):
            kind, flags, _mask, size = struct.unpack_from(">IIII", value, offset)
            offset += 16
            who = value[offset : offset + size]
            offset += (size + 3) & ~3
            if kind not in (0, 1) or flags & 0x0F or who not in (b"OWNER@", b"GROUP@", b"EVERYONE@"):
                return False
        return offset == len(value)
    except struct.error:
        return False


def _list_xattrs(fd):
    try:
        return os.listxattr(fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTSUP):
            return []
        raise


def _refusal(fd, exc):
    """Why the destination refused an xattr (a short text), or None when ``exc`` is another error."""
    if exc.errno == errno.ENOSPC:
        try:
            vfs = os.fstatvfs(fd)
            if vfs.f_bfree * vfs.f_frsize < _FULL_BELOW:
                return None  # the filesystem is full: the caller stops the run
        except OSError:
            return None
    return _REFUSALS.get(exc.errno)


def _copy_xattrs(src_fd, fd, mode, is_dir):
    """Copy the extended attributes of ``src_fd`` to ``fd``; return (mode to set, [(name, why) lost])."""
    lost = []
    kept = set()
    acl_access = None
    for name in sorted(_list_xattrs(src_fd)):
        if name.startswith(_NOT_COPIED):
            continue
        try:
            value = os.getxattr(src_fd, name)
        except OSError as exc:
            if exc.errno == errno.ENODATA:
                continue  # removed since it was listed
            lost.append((name, "cannot be read: %s" % (exc.strerror or exc)))
            continue
        if name == ACL_ACCESS:
            acl_access = value
        try:
            os.setxattr(fd, name, value)
        except OSError as exc:
            why = _refusal(fd, exc)
            if why is None:
                raise
            if name.startswith(_BEST_EFFORT) or (name in _NFS4_ACLS and nfs4_acl_is_trivial(name, value)):
                continue
            lost.append((name, why))
            continue
        kept.add(name)
    # A default ACL on the destination directory gave the new file an ACL of its own: the copy
    # must not let in anyone the source did not.
    for name in (ACL_ACCESS, ACL_DEFAULT) if is_dir else (ACL_ACCESS,):
        if name not in kept and name in _list_xattrs(fd):
            os.removexattr(fd, name)
    if acl_access is not None and ACL_ACCESS not in kept:
        bits = acl_group_bits(acl_access)
        mode = (mode & ~0o070) | ((bits or 0) << 3)
    return mode, lost


def copy_metadata(fd, st, keep_owner=True, src_fd=None, drop_unsupported=False):
    """Give the file at ``fd`` the owner, group, extended attributes, mode and times of the source.

    ``st`` is the source's stat; ``src_fd`` the source open for reading (without it, only the
    owner, group, mode and times are copied). The order matters: the owner first (chown
    clears set-id bits and ``security.capability``), then the extended attributes (``user.*``,
    ``security.*``, ``trusted.*`` as root, POSIX ACLs), then the mode (over the ACL: its mask
    follows the group bits) and the times last.

    What the destination refuses (no xattr or ACL support, ``security.*`` as non-root, a value
    too large) raises ``MetadataError`` naming it, unless ``drop_unsupported``: then it is
    left out and named in the returned warning. A POSIX ACL left out makes the group bits
    those of the ACL's owning-group entry (never the mask): the mode is never wider than the
    source allowed. Returns a warning string ("" if none). Raises OSError for other errors
    (ENOSPC on a full filesystem, EDQUOT, EIO).
    """
    warnings = []
    if keep_owner:
        try:
            os.fchown(fd, st.st_uid, st.st_gid)
        except PermissionError:
            warnings.append("owner %d:%d not kept (not permitted)" % (st.st_uid, st.st_gid))
    mode = stat.S_IMODE(st.st_mode)
    if src_fd is not None:
        mode, lost = _copy_xattrs(src_fd, fd, mode, stat.S_ISDIR(st.st_mode))
        if lost:
            what = ", ".join("%s (%s)" % item for item in lost)
            acl = any(name == ACL_ACCESS for name, _why in lost)
            if not drop_unsupported:
                raise MetadataError(
                    "the destination cannot keep %s; the file is left at the source "
                    "(drop_unsupported_metadata moves it without them)" % what
                )
            warnings.append(
                "metadata dropped (drop_unsupported_metadata): %s%s"
                % (what, "; group permissions set from the ACL's owning-group entry" if acl else "")
            )
    os.fchmod(fd, mode)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    return "; ".join(warnings)
