"""Extended-attribute calls of the filesystem: get/set/list/remove with the kernel's rules.

Placement follows ``ext4_xattr_set_handle``: in the inode when it fits, else in the xattr
block; a shared block (``h_refcount > 1``) is copied on write and the old one's count
dropped. POSIX ACLs are converted between the VFS and on-disk forms, and setting an access
ACL updates the mode (``posix_acl_update_mode``). ``system.data`` (inline data) is internal.
"""

from __future__ import annotations

import errno
import struct

from nuwa.fs.ext4 import csum, xattr
from nuwa.fs.ext4.cache import ORDER_TREE
from nuwa.fs.ext4.c_ext4 import ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_USER_OBJ
from nuwa.fs.ext4.inode import Inode
from nuwa.errors import fs_error
from nuwa.fs.model import XATTR_CREATE, XATTR_REPLACE


class XattrOps:
    """xattr calls, mixed into the filesystem class."""

    def _all_xattrs(self, node: Inode):
        ib, bl, _h = self.xattr_lists(node)
        return [a for a in ib + bl if not (a[0] == 7 and a[1] == b"data")]

    def _get_raw_xattr(self, node: Inode, idx: int, name: bytes) -> bytes | None:
        for i, n, v in self._all_xattrs(node):
            if i == idx and n == name:
                return v
        return None

    def getxattr(self, path: str, name: str, follow_symlinks: bool = True) -> bytes:
        """An attribute's value (POSIX ACLs in the VFS format)."""
        node = self._existing(path, follow_symlinks)
        idx, suffix = xattr.split_name(name)
        if idx == 7 and suffix == b"data":
            raise fs_error(errno.ENODATA, path)
        v = self._guard(lambda: self._get_raw_xattr(node, idx, suffix))
        if v is None:
            raise fs_error(errno.ENODATA, path)
        if idx in (2, 3):
            return self._guard(lambda: xattr.acl_disk_to_vfs(v, f"ext4 inode {node.ino} {name}"))
        return v

    def listxattr(self, path: str, follow_symlinks: bool = True) -> list[str]:
        """Names of the attributes."""
        node = self._existing(path, follow_symlinks)
        return [xattr.full_name(i, n) for i, n, _v in self._guard(lambda: self._all_xattrs(node))]

    def setxattr(self, path: str, name: str, value: bytes, flags: int = 0, follow_symlinks: bool = True) -> None:
        """Set an attribute (in the inode if it fits, else in the xattr block)."""
        node = self._existing(path, follow_symlinks)
        idx, suffix = xattr.split_name(name)
        value = bytes(value)
        if len(value) > 65536:
            raise fs_error(errno.E2BIG, path)
        if idx == 1 and not (node.is_reg or node.is_dir):
            raise fs_error(errno.EPERM, path)
        if idx == 7 and suffix == b"data":
            raise fs_error(errno.EPERM, path)
        if idx == 3 and not node.is_dir:
            raise fs_error(errno.EACCES, path)
        if idx in (2, 3):
            value = xattr.acl_vfs_to_disk(value)
        self.check_writable()

        def op():
            exists = self._get_raw_xattr(node, idx, suffix) is not None
            if flags & XATTR_CREATE and exists:
                raise fs_error(errno.EEXIST, path)
            if flags & XATTR_REPLACE and not exists:
                raise fs_error(errno.ENODATA, path)
            v = value
            if idx == 2:
                equiv, mode = _acl_mode(v, node.mode)
                node.mode = mode
                if equiv:
                    if exists:
                        self.xattr_remove(node, name)
                    node.ctime = self.now()
                    self.dirty(node)
                    return
            self._set_raw_xattr(node, idx, suffix, v)
            node.ctime = self.now()
            self.dirty(node)
        self._mutate(op)

    def removexattr(self, path: str, name: str, follow_symlinks: bool = True) -> None:
        """Remove an attribute (ENODATA if absent)."""
        node = self._existing(path, follow_symlinks)
        xattr.split_name(name)
        self.check_writable()

        def op():
            if not self.xattr_remove(node, name):
                raise fs_error(errno.ENODATA, path)
            node.ctime = self.now()
            self.dirty(node)
        self._mutate(op)

    def xattr_remove(self, node: Inode, name: str) -> bool:
        """Remove ``name`` from wherever it is stored; False if absent."""
        idx, suffix = xattr.split_name(name)
        ib, bl, hdr = self.xattr_lists(node)
        nib = [a for a in ib if not (a[0] == idx and a[1] == suffix)]
        nbl = [a for a in bl if not (a[0] == idx and a[1] == suffix)]
        if len(nib) == len(ib) and len(nbl) == len(bl):
            return False
        self.write_xattr_lists(node, nib, nbl, hdr, block_changed=len(nbl) != len(bl))
        return True

    def _set_raw_xattr(self, node: Inode, idx: int, suffix: bytes, value: bytes) -> None:
        ib, bl, hdr = self.xattr_lists(node)
        in_block = any(a[0] == idx and a[1] == suffix for a in bl)
        nib = [a for a in ib if not (a[0] == idx and a[1] == suffix)]
        nbl = [a for a in bl if not (a[0] == idx and a[1] == suffix)]
        new = (idx, suffix, value)
        space = xattr.ibody_space(len(node.raw), node.extra_isize) if len(node.raw) > 128 else 0
        if len(node.raw) > 128 and xattr.fits_ibody(nib + [new], space):
            nib.append(new)
            changed = in_block
        elif xattr.fits_block(nbl + [new], self.bs):
            nbl.append(new)
            changed = True
        else:
            raise fs_error(errno.ENOSPC, None, "no space for extended attribute")
        self.write_xattr_lists(node, nib, nbl, hdr, block_changed=changed)
        if not self.sb.compat("ext_attr"):
            self.sb.f["s_feature_compat"] |= 0x8

    def write_xattr_lists(self, node: Inode, ib, bl, hdr, block_changed: bool = True) -> None:
        """Store attribute lists: the in-inode area, then the block (copied if shared)."""
        if len(node.raw) > 128:
            start = 128 + node.extra_isize
            node.raw[start:] = xattr.encode_ibody(ib, len(node.raw) - start)
        elif ib:
            raise fs_error(errno.ENOSPC, None)
        self.dirty(node)
        if not block_changed:
            return
        per = self.bs // 512
        old = node.file_acl
        if not bl:
            if old:
                self.release_xattr_block(old)
                node.file_acl = 0
                node.blocks512 -= per
            return
        data = xattr.encode_block(bl, self.bs, 1)
        if old and hdr is not None and hdr["h_refcount"] <= 1:
            blk = old
        else:
            if old:
                self.release_xattr_block(old)
            else:
                node.blocks512 += per
            (blk, _n), = self.alloc.alloc_blocks(self.data_goal(node, 0), 1)
        if self.csum:
            csum.set_xattr_block_csum(self.seed, blk, data)
        self.cache.put(blk, data, ORDER_TREE)
        self._verified.add(blk)
        node.file_acl = blk


def _acl_mode(disk_acl: bytes, mode: int) -> tuple[bool, int]:
    """``(equivalent to the mode, new mode)`` for an access ACL (kernel posix_acl_equiv_mode)."""
    perms = {}
    extended = False
    off = 4
    while off + 4 <= len(disk_acl):
        tag, perm = struct.unpack_from("<HH", disk_acl, off)
        if tag in (ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER):
            perms[tag] = perm & 7
            off += 4
        else:
            extended = True
            off += 8
    if ACL_MASK in perms:
        extended = True
    group = perms.get(ACL_MASK, perms.get(ACL_GROUP_OBJ, (mode >> 3) & 7))
    new = (mode & ~0o777) | perms.get(ACL_USER_OBJ, (mode >> 6) & 7) << 6 | group << 3 | perms.get(ACL_OTHER, mode & 7)
    return not extended, new
