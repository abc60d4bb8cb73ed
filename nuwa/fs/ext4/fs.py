"""``Ext4FS``: the filesystem-model protocol (nuwa.fs.model) over an ext2/3/4 volume.

Path calls resolve through :class:`nuwa.fs.model.Resolver` (confined to the image) and then
act on inodes, with the errnos and side effects the Linux kernel gives: link counts and
``dir_nlink`` (``ext4_inc_count``/``ext4_dec_count``), ctime/mtime updates, setgid
inheritance, ``chown`` clearing set-id bits and file capabilities, POSIX ACLs kept in step
with the mode. The volume (:mod:`volume`), file contents (:mod:`files`), directories
(:mod:`dirops`) and xattr layout (:mod:`xattr`) do the on-disk work.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
import struct
import uuid as _uuid

from nuwa.errors import CorruptImageError, fs_error
from nuwa.fs.ext4 import xattr
from nuwa.fs.ext4.c_ext4 import (
    EXT2_ROOT_INO,
    EXT4_EXTENTS_FL,
    EXT4_INLINE_DATA_FL,
    EXT4_LINK_MAX,
)
from nuwa.fs.ext4.dirhash import HASH_NAMES
from nuwa.fs.ext4.dirops import DirOps
from nuwa.fs.ext4.extents import empty_root
from nuwa.fs.ext4.files import Ext4Handle, FileOps
from nuwa.fs.ext4.inode import Inode
from nuwa.fs.ext4.orphan import OrphanOps
from nuwa.fs.ext4.volume import Volume
from nuwa.fs.ext4.xattrops import XattrOps
from nuwa.fs.model import FileHandle, FileSystem, Resolver, Stat, StatVFS, check_path

_FT_OF_MODE = {_stat.S_IFREG: 1, _stat.S_IFDIR: 2, _stat.S_IFCHR: 3, _stat.S_IFBLK: 4, _stat.S_IFIFO: 5,
               _stat.S_IFSOCK: 6, _stat.S_IFLNK: 7}


def file_type(mode: int) -> int:
    """Directory-entry ``file_type`` for an inode mode."""
    return _FT_OF_MODE.get(_stat.S_IFMT(mode), 0)


def decode_rdev(i_block: bytes) -> int:
    """Device number stored in ``i_block`` (old 16-bit or new 32-bit encoding)."""
    w0, w1 = struct.unpack_from("<II", i_block, 0)
    if w0:
        return os.makedev((w0 >> 8) & 0xFF, w0 & 0xFF)
    return os.makedev((w1 & 0xFFF00) >> 8, (w1 & 0xFF) | ((w1 >> 12) & 0xFFF00))


def encode_rdev(rdev: int) -> bytes:
    """``i_block`` for a device node (kernel ``ext4_write_inode``; FORMAT-NOTES B2.5)."""
    major, minor = os.major(rdev), os.minor(rdev)
    if major < 256 and minor < 256:
        return struct.pack("<I", major << 8 | minor).ljust(60, b"\0")
    new = (minor & 0xFF) | (major << 8) | ((minor & ~0xFF) << 12)
    return struct.pack("<II", 0, new & 0xFFFFFFFF).ljust(60, b"\0")


class Ext4FS(Volume, FileOps, DirOps, XattrOps, OrphanOps, FileSystem):
    """An ext2/3/4 filesystem on a block device, read-only or writable."""

    def __init__(self, dev, writable: bool = False, forensic: bool = False, clock=None, journal: bool = True):
        self._open(dev, writable, forensic, clock, journal)
        # cache=True: the dentry cache; _mutate(names=True) invalidates it (see Resolver)
        self.resolver = Resolver(root=EXT2_ROOT_INO, lookup=self._r_lookup, parent=self._r_parent,
                                 mode=self._r_mode, readlink=self._r_readlink, cache=True)
        # (path, follow) -> the inode an existing path resolved to: a commit asks for one path
        # five or six times in a row (create, write, lstat, chmod, xattrs, utime). Creating a
        # name never changes what an existing path resolves to; every removal or replacement of
        # a name, any failure and any corruption found drop it (_mutate, _guard)
        self._paths: dict[tuple[str, bool], int] = {}
        # pending orphans: processed now when writable (as the kernel does at mount), refused
        # read-only unless forensic
        self.orphans = self._guard(lambda: self.open_orphans(self.writable))

    # ---- guards ------------------------------------------------------------------------------
    def _guard(self, fn):
        try:
            return fn()
        except CorruptImageError as err:
            self._paths.clear()
            self.note_corrupt(err)
            raise

    def _mutate(self, fn, names: bool = False, removes: bool = False):
        """Run the mutation ``fn``. ``names``: it removes or replaces a directory entry that
        cached path prefixes may go through (a directory or a symlink), so they may be stale
        afterwards; ``removes``: it removes or replaces any entry, so a remembered whole path
        may be. A failed mutation may have left the tree half-changed: it drops both."""
        self.check_writable()
        try:
            r = self._guard(fn)
        except BaseException:
            self.resolver.invalidate()
            self._paths.clear()
            raise
        if names:
            self.resolver.invalidate()
        if names or removes:
            self._paths.clear()
        self.maybe_checkpoint()
        return r

    # ---- resolver callbacks ------------------------------------------------------------------
    def _r_lookup(self, dir_ino: int, name: str):
        r = self.dir_lookup(self.inode(dir_ino), os.fsencode(name))
        if r is None:
            return None
        node = self.inode(r[0])
        if node.links == 0 and not self._open_count.get(node.ino):
            raise CorruptImageError(f"entry {name!r} points to unused inode {r[0]}",
                                    where=f"ext4 directory inode {dir_ino}")
        if _stat.S_IFMT(node.mode) not in _FT_OF_MODE:
            # the kernel's ext4_iget refuses it ("bogus i_mode"): EFSCORRUPTED, not a file of no type
            raise CorruptImageError(f"entry {name!r} points to inode {r[0]} of no valid file type "
                                    f"(mode 0o{node.mode:o})", where=f"ext4 directory inode {dir_ino}")
        return r[0]

    def _r_parent(self, dir_ino: int) -> int:
        if dir_ino == EXT2_ROOT_INO:
            return EXT2_ROOT_INO
        r = self.dir_lookup(self.inode(dir_ino), b"..")
        if r is None:
            raise CorruptImageError("directory has no '..' entry", where=f"ext4 directory inode {dir_ino}")
        return r[0]

    def _r_mode(self, ino: int) -> int:
        return self.inode(ino).mode

    def _r_readlink(self, ino: int) -> str:
        return os.fsdecode(self.link_target(self.inode(ino)))

    def link_target(self, node: Inode) -> bytes:
        """The raw target of a symlink inode."""
        if node.flags & EXT4_INLINE_DATA_FL:
            target = self.inline_bytes(node)
            if len(target) != node.size:
                raise CorruptImageError(f"inline symlink size {node.size} exceeds its inline data ({len(target)} bytes)",
                                        where=f"ext4 inode {node.ino}")
            return target
        if not self.has_blocks(node):
            if node.size > 60:
                raise CorruptImageError(f"fast symlink size {node.size} exceeds i_block",
                                        where=f"ext4 inode {node.ino}")
            return bytes(node.i_block[: node.size])
        if node.size >= self.bs:
            raise CorruptImageError(f"symlink size {node.size} exceeds a block", where=f"ext4 inode {node.ino}")
        return self.file_read(node, 0, node.size)

    def _resolve(self, path: str, follow: bool):
        return self._guard(lambda: self.resolver.resolve(path, follow))

    def _resolve_last(self, path: str):
        """Resolve without following the last component even when it has trailing slashes
        (``unlink``/``rmdir``/``rename`` semantics); returns ``(resolved, had_trailing_slash)``."""
        stripped = check_path(path).rstrip("/") or "/"
        return self._resolve(stripped, False), stripped != path and stripped != "/"

    #: remembered whole paths before the memo starts over (bounds its memory)
    PATHS_MAX = 1 << 15

    def _existing(self, path: str, follow: bool) -> Inode:
        key = (path, follow)
        ino = self._paths.get(key)
        if ino is None:
            res = self._resolve(path, follow)
            if res.node is None:
                raise fs_error(errno.ENOENT, path)
            ino = res.node
            if len(self._paths) >= self.PATHS_MAX:
                self._paths.clear()
            self._paths[key] = ino
        return self.inode(ino)

    # ---- metadata ----------------------------------------------------------------------------
    def _stat(self, node: Inode) -> Stat:
        rdev = 0
        if _stat.S_ISCHR(node.mode) or _stat.S_ISBLK(node.mode):
            rdev = decode_rdev(node.i_block)
        return Stat(st_mode=node.mode, st_ino=node.ino, st_nlink=node.links, st_uid=node.uid, st_gid=node.gid,
                    st_size=node.size, st_atime_ns=node.atime, st_mtime_ns=node.mtime, st_ctime_ns=node.ctime,
                    st_rdev=rdev, st_blocks=self.pending_blocks512(node))

    def lstat(self, path: str) -> Stat:
        """Metadata without following a final symlink."""
        return self._stat(self._existing(path, False))

    def stat(self, path: str) -> Stat:
        """Metadata following symlinks."""
        return self._stat(self._existing(path, True))

    def content_fingerprint(self, path: str):
        """A key of where a regular file's bytes come from, or None (the diff's fast path).

        For each run of the file's block map the device is asked which storage layer provides
        those bytes (``BlockDevice.source_of``: a qcow2 overlay answers with its backing
        file's identity and range when none of those clusters is allocated in the overlay).
        Two files with equal keys read identical bytes, so ``nuwa diff`` of two images over one
        backing file skips the unchanged files without reading their data. Holes and
        uninitialised extents read as zeros and are keyed by their length. Inline data, empty
        files, a device without the query or any run the device cannot attribute: None.
        """
        node = self._existing(path, False)
        hook = getattr(self.dev, "source_of", None)
        if (hook is None or not _stat.S_ISREG(node.mode) or node.flags & EXT4_INLINE_DATA_FL
                or node.size == 0 or not self.has_blocks(node)):
            return None
        bs = self.bs
        runs = []
        for _lblk, cnt, pblk, uninit in self.map_of(node).lookup(0, (node.size + bs - 1) // bs):
            if pblk is None or uninit:
                runs.append(("zeros", cnt * bs))
                continue
            key = hook(pblk * bs, cnt * bs)
            if key is None:
                return None
            runs.append(key)
        return ("ext4 content", node.size, tuple(runs))

    def readdir(self, path: str) -> list[str]:
        """Names in a directory, in on-disk order."""
        node = self._existing(path, True)
        if not node.is_dir:
            raise fs_error(errno.ENOTDIR, path)
        ents = self._guard(lambda: self.dir_entries(node))
        return [os.fsdecode(nm) for _i, _f, nm in ents if nm not in (b".", b"..")]

    def readdir_stat(self, path: str) -> list[tuple[str, Stat]]:
        """``readdir`` with each name's ``lstat``, taken from the directory's own entries (the
        inode numbers are in them): one resolution for the whole directory instead of one per
        name, as the overlay loads a directory. Same answers and errors as the two calls."""
        node = self._existing(path, True)
        if not node.is_dir:
            raise fs_error(errno.ENOTDIR, path)

        def scan():
            out = []
            for ino, _ft, nm in self.dir_entries(node):
                if nm in (b".", b".."):
                    continue
                child = self.inode(ino)
                if child.links == 0 and not self._open_count.get(ino):  # what _r_lookup refuses
                    raise CorruptImageError(f"entry {os.fsdecode(nm)!r} points to unused inode {ino}",
                                            where=f"ext4 directory inode {node.ino}")
                out.append((os.fsdecode(nm), self._stat(child)))
            return out
        return self._guard(scan)

    def readlink(self, path: str) -> str:
        """A symlink's target."""
        node = self._existing(path, False)
        if not node.is_lnk:
            raise fs_error(errno.EINVAL, path)
        return self._guard(lambda: os.fsdecode(self.link_target(node)))

    def _overhead(self) -> int:
        sb = self.sb
        if sb.f["s_overhead_clusters"]:
            return sb.f["s_overhead_clusters"]
        itb = (sb.inodes_per_group * sb.inode_size + self.bs - 1) // self.bs
        total = sb.first_data_block
        for g in range(self.groups.count):
            total += len(sb.group_overhead(g)) + 2 + itb
        if sb.compat("has_journal") and sb.f["s_journal_inum"]:
            total += self.inode(sb.f["s_journal_inum"]).blocks512 // (self.bs // 512)
        return total

    def statvfs(self, path: str = "/") -> StatVFS:
        """Filesystem counts, as ``statfs`` reports them for ext4."""
        sb = self.sb
        free = sb.free_blocks_count
        # ext4_statfs also holds back the mount's reserved clusters (ext4_calculate_resv_clusters:
        # 2% of the blocks, at most 4096) from what unprivileged writers may use
        resv = min(sb.blocks_count // 50, 4096)
        return StatVFS(f_bsize=self.bs, f_frsize=self.bs, f_blocks=sb.blocks_count - self._overhead(),
                       f_bfree=free, f_bavail=max(0, free - sb.r_blocks_count - resv), f_files=sb.inodes_count,
                       f_ffree=sb.free_inodes_count, f_favail=sb.free_inodes_count,
                       f_flag=0 if self.writable else 1)

    # ---- contents ----------------------------------------------------------------------------
    def open_handle(self, path: str, flags: int = os.O_RDONLY, mode: int = 0o666) -> FileHandle:
        """``open(2)`` semantics for O_CREAT/O_EXCL/O_TRUNC/O_NOFOLLOW/O_DIRECTORY."""
        acc = flags & os.O_ACCMODE
        wr = acc in (os.O_WRONLY, os.O_RDWR)
        creat = bool(flags & os.O_CREAT)
        excl = creat and bool(flags & os.O_EXCL)
        follow = not (flags & os.O_NOFOLLOW) and not excl
        res = self._resolve(path, follow)
        if res.node is None:
            if not creat:
                raise fs_error(errno.ENOENT, path)
            if res.trailing_slash:
                raise fs_error(errno.EISDIR, path)
            node = self._mutate(lambda: self._create(res.parent, res.name, _stat.S_IFREG | (mode & 0o7777), path))
            return Ext4Handle(self, node.ino, wr, path)
        if excl:
            raise fs_error(errno.EEXIST, path)
        node = self.inode(res.node)
        if node.is_lnk:
            raise fs_error(errno.ELOOP, path)
        if node.is_dir and (wr or creat or flags & os.O_TRUNC):
            raise fs_error(errno.EISDIR, path)
        if flags & os.O_DIRECTORY and not node.is_dir:
            raise fs_error(errno.ENOTDIR, path)
        if not node.is_dir and not node.is_reg:
            # FIFOs, sockets and devices have no contents in an image; a real open would reach
            # the host's devices or block, so it is refused (as MemoryFS and HostDirFS do)
            raise fs_error(errno.ENXIO, path)
        if (wr or flags & os.O_TRUNC) and not self.writable:
            raise fs_error(errno.EROFS, path)
        if flags & os.O_TRUNC and node.is_reg:
            # Linux truncates even with O_RDONLY (POSIX leaves it unspecified)
            self._mutate(lambda: self.file_truncate(node, 0))
        return Ext4Handle(self, node.ino, wr, path)

    def truncate(self, path: str, length: int) -> None:
        """``truncate(2)``."""
        node = self._existing(path, True)
        if node.is_dir:
            raise fs_error(errno.EISDIR, path)
        self._mutate(lambda: self.file_truncate(node, length))

    # ---- namespace ---------------------------------------------------------------------------
    def _create(self, parent_ino: int, name: str, mode: int, path: str, links: int = 1) -> Inode:
        parent = self.inode(parent_ino)
        if parent.links == 0:
            raise fs_error(errno.ENOENT, path)
        bname = os.fsencode(name)
        node = self.new_inode(parent, mode)
        node.links = links
        self.dir_add(parent, bname, node.ino, file_type(mode))
        parent.mtime = parent.ctime = node.ctime
        self.dirty(parent)
        return node

    def _new_target(self, path: str, is_dir: bool = False):
        # kernel filename_create: the last component is never followed; an existing name is
        # EEXIST even with a trailing slash; a trailing slash on a new non-directory is ENOENT
        check_path(path)
        stripped = path.rstrip("/") or "/"
        trailing = stripped != path and stripped != "/"
        res = self._resolve(stripped, False)
        if res.node is not None or res.name in ("", ".", ".."):
            raise fs_error(errno.EEXIST, path)
        if trailing and not is_dir:
            raise fs_error(errno.ENOENT, path)
        return res

    def _inc_dir_links(self, d: Inode) -> None:
        # kernel ext4_inc_count: indexed directories saturate at 1 beyond EXT4_LINK_MAX
        d.links += 1
        if self.is_indexed(d) and (d.links > EXT4_LINK_MAX or d.links == 2):
            d.links = 1
            if not self.sb.ro_compat("dir_nlink"):
                self.sb.f["s_feature_ro_compat"] |= 0x20

    @staticmethod
    def _dec_links(node: Inode) -> None:
        # kernel ext4_dec_count
        if not node.is_dir or node.links > 2:
            node.links -= 1

    def _check_dir_link_max(self, d: Inode, path: str) -> None:
        if not self.is_indexed(d) and d.links >= EXT4_LINK_MAX:
            raise fs_error(errno.EMLINK, path)

    def mkdir(self, path: str, mode: int = 0o777) -> None:
        """``mkdir(2)``."""
        res = self._new_target(path, is_dir=True)
        self.check_writable()

        def op():
            parent = self.inode(res.parent)
            self._check_dir_link_max(parent, path)
            node = self._create(res.parent, res.name, _stat.S_IFDIR | (mode & 0o1777), path, links=2)
            self.init_dir_block(node, parent.ino)
            self._inc_dir_links(parent)
        self._mutate(op)

    def rmdir(self, path: str) -> None:
        """``rmdir(2)``."""
        res, trailing = self._resolve_last(path)
        if res.name == ".":
            raise fs_error(errno.EINVAL, path)
        if res.name == "..":
            raise fs_error(errno.ENOTEMPTY, path)
        if res.node is None:
            raise fs_error(errno.ENOENT, path)
        if res.name == "":
            raise fs_error(errno.EBUSY, path)
        node = self.inode(res.node)
        if not node.is_dir:  # a symlink is never followed, even with a trailing slash
            raise fs_error(errno.ENOTDIR, path)
        self.check_writable()

        def op():
            if not self.dir_is_empty(node):
                raise fs_error(errno.ENOTEMPTY, path)
            parent = self.inode(res.parent)
            self.dir_remove(parent, os.fsencode(res.name))
            self._dec_links(parent)
            now = self.now()
            parent.mtime = parent.ctime = node.ctime = now
            self.dirty(parent)
            node.links = 0
            self.release_inode(node)
        self._mutate(op, names=True, removes=True)

    def unlink(self, path: str) -> None:
        """``unlink(2)``."""
        res, trailing = self._resolve_last(path)
        if res.node is None:
            raise fs_error(errno.ENOENT, path)
        node = self.inode(res.node)
        if node.is_dir or res.name in ("", ".", ".."):
            raise fs_error(errno.EISDIR, path)
        if trailing:  # kernel do_unlinkat "slashes": a non-directory with a trailing slash
            raise fs_error(errno.ENOTDIR, path)
        self.check_writable()

        def op():
            parent = self.inode(res.parent)
            self.dir_remove(parent, os.fsencode(res.name))
            now = self.now()
            parent.mtime = parent.ctime = now
            self.dirty(parent)
            node.links -= 1
            node.ctime = now
            self.dirty(node)
            if node.links == 0:
                self.release_inode(node)
        self._mutate(op, names=node.is_lnk, removes=True)  # cached prefixes: directories and symlinks only

    def _is_ancestor(self, anc: int, ino: int) -> bool:
        seen = 0
        while True:
            if ino == anc:
                return True
            if ino == EXT2_ROOT_INO or seen > 4096:
                return False
            ino = self._r_parent(ino)
            seen += 1

    def rename(self, src: str, dst: str, noreplace: bool = False) -> None:
        """``rename(2)`` / ``renameat2(RENAME_NOREPLACE)``."""
        # kernel do_renameat2: both parents are resolved first (last components not followed,
        # trailing slashes only demand directories), then the names are checked
        s_strip = check_path(src).rstrip("/") or "/"
        d_strip = check_path(dst).rstrip("/") or "/"
        rs = self._resolve(s_strip, False)
        rd = self._resolve(d_strip, False)
        s_trail, d_trail = s_strip != src and s_strip != "/", d_strip != dst and d_strip != "/"
        if rs.name in ("", ".", ".."):
            raise fs_error(errno.EBUSY, src)
        if rd.name in ("", ".", ".."):
            raise fs_error(errno.EEXIST if noreplace else errno.EBUSY, dst)
        if rs.node is None:
            raise fs_error(errno.ENOENT, src)
        snode = self.inode(rs.node)
        if noreplace and rd.node is not None:
            raise fs_error(errno.EEXIST, dst)
        if (d_trail or s_trail) and not snode.is_dir:
            raise fs_error(errno.ENOTDIR, src if s_trail else dst)
        dnode = self.inode(rd.node) if rd.node is not None else None
        # lock_rename's trap, checked before vfs_rename's type checks: a source that is an
        # ancestor of the target's parent is EINVAL, a target that is an ancestor of the
        # source's parent is ENOTEMPTY (fs/namei.c do_renameat2)
        if snode.is_dir and self._guard(lambda: self._is_ancestor(snode.ino, rd.parent)):
            raise fs_error(errno.EINVAL, dst)
        if dnode is not None and dnode.is_dir and self._guard(lambda: self._is_ancestor(dnode.ino, rs.parent)):
            raise fs_error(errno.ENOTEMPTY, dst)
        if dnode is not None:
            if rd.node == rs.node:
                return
            if snode.is_dir and not dnode.is_dir:
                raise fs_error(errno.ENOTDIR, dst)
            if not snode.is_dir and dnode.is_dir:
                raise fs_error(errno.EISDIR, dst)
        self.check_writable()

        def op():
            sp, dp = self.inode(rs.parent), self.inode(rd.parent)
            sname, dname = os.fsencode(rs.name), os.fsencode(rd.name)
            ft = file_type(snode.mode)
            if dnode is not None and dnode.is_dir and not self.dir_is_empty(dnode):
                raise fs_error(errno.ENOTEMPTY, dst)
            if dnode is None and snode.is_dir and sp.ino != dp.ino:
                self._check_dir_link_max(dp, dst)
            now = self.now()
            if dnode is not None:
                self.dir_repoint(dp, dname, snode.ino, ft)
            else:
                self.dir_add(dp, dname, snode.ino, ft)
            self.dir_remove(sp, sname)
            # kernel ext4_rename: the moved directory's old parent loses a link; the new parent
            # gains one unless a directory was replaced (whose links are cleared)
            if snode.is_dir:
                if sp.ino != dp.ino:
                    self.dir_repoint(snode, b"..", dp.ino, 2)
                self._dec_links(sp)
                if dnode is None:
                    self._inc_dir_links(dp)
            if dnode is not None:
                dnode.ctime = now
                if dnode.is_dir:
                    dnode.links = 0
                else:
                    dnode.links -= 1
                self.dirty(dnode)
                if dnode.links == 0:
                    self.release_inode(dnode)
            snode.ctime = now
            sp.mtime = sp.ctime = dp.mtime = dp.ctime = now
            for n in (snode, sp, dp):
                self.dirty(n)
        # a cached path goes through directories and symlinks only: moving or replacing a file
        # leaves every cached resolution right
        self._mutate(op, names=any(n is not None and (n.is_dir or n.is_lnk) for n in (snode, dnode)), removes=True)

    def symlink(self, target: str, path: str) -> None:
        """``symlink(2)``: fast (< 60 bytes, in i_block) or slow (one block)."""
        tb = os.fsencode(target)
        if "\0" in target:
            raise fs_error(errno.EINVAL, path)
        if not tb:
            raise fs_error(errno.ENOENT, path)
        if len(tb) + 1 > self.bs:
            raise fs_error(errno.ENAMETOOLONG, path)
        res = self._new_target(path)
        self.check_writable()

        def op():
            node = self._create(res.parent, res.name, _stat.S_IFLNK | 0o777, path)
            node.size = len(tb)
            if len(tb) < 60:
                node.flags &= ~EXT4_EXTENTS_FL
                node.i_block = tb.ljust(60, b"\0")
            else:
                if self.sb.incompat("extent"):
                    node.flags |= EXT4_EXTENTS_FL
                    node.i_block = empty_root()
                fmap = self.map_of(node)
                (p, _n), = self.alloc.alloc_blocks(self.data_goal(node, 0), 1)
                fmap.add(0, 1, p)
                self._begin_write()
                self.dev.pwrite(p * self.bs, tb.ljust(self.bs, b"\0"))
                node.blocks512 = self.bs // 512
            self.dirty(node)
        self._mutate(op)

    def link(self, existing: str, new: str) -> None:
        """``link(2)`` (the final symlink of ``existing`` is not followed)."""
        node = self._existing(existing, False)
        if node.is_dir:
            raise fs_error(errno.EPERM, existing)
        res = self._new_target(new)
        if node.links >= EXT4_LINK_MAX:
            raise fs_error(errno.EMLINK, existing)
        self.check_writable()

        def op():
            parent = self.inode(res.parent)
            self.dir_add(parent, os.fsencode(res.name), node.ino, file_type(node.mode))
            now = self.now()
            node.links += 1
            node.ctime = parent.mtime = parent.ctime = now
            self.dirty(node)
            self.dirty(parent)
        self._mutate(op)

    def mknod(self, path: str, mode: int, rdev: int = 0) -> None:
        """``mknod(2)`` for regular files, FIFOs, sockets and device nodes."""
        fmt = _stat.S_IFMT(mode)
        if fmt == _stat.S_IFDIR:
            raise fs_error(errno.EPERM, path)
        if fmt not in (0, _stat.S_IFREG, _stat.S_IFCHR, _stat.S_IFBLK, _stat.S_IFIFO, _stat.S_IFSOCK):
            raise fs_error(errno.EINVAL, path)
        fmt = fmt or _stat.S_IFREG
        res = self._new_target(path)
        self.check_writable()

        def op():
            node = self._create(res.parent, res.name, fmt | (mode & 0o7777), path)
            if fmt in (_stat.S_IFCHR, _stat.S_IFBLK):
                node.flags &= ~EXT4_EXTENTS_FL
                node.i_block = encode_rdev(rdev)
            elif fmt in (_stat.S_IFIFO, _stat.S_IFSOCK):
                node.flags &= ~EXT4_EXTENTS_FL
                node.i_block = bytes(60)
            self.dirty(node)
        self._mutate(op)

    # ---- attributes --------------------------------------------------------------------------
    def chmod(self, path: str, mode: int, follow_symlinks: bool = True) -> None:
        """``chmod(2)``; updates an access ACL like ``posix_acl_chmod``."""
        node = self._existing(path, follow_symlinks)
        if node.is_lnk:
            raise fs_error(errno.EOPNOTSUPP, path)

        def op():
            node.mode = _stat.S_IFMT(node.mode) | (mode & 0o7777)
            node.ctime = self.now()
            acl = self._get_raw_xattr(node, 2, b"")
            if acl is not None:
                self._set_raw_xattr(node, 2, b"", xattr.acl_chmod(acl, node.mode))
            self.dirty(node)
        self._mutate(op)

    def chown(self, path: str, uid: int, gid: int, follow_symlinks: bool = True) -> None:
        """``chown(2)``/``lchown(2)``: non-directories lose set-id bits and file capabilities."""
        node = self._existing(path, follow_symlinks)

        def op():
            if uid != -1:
                node.uid = uid & 0xFFFFFFFF
            if gid != -1:
                node.gid = gid & 0xFFFFFFFF
            if not node.is_dir:
                m = node.mode & ~_stat.S_ISUID
                if m & (_stat.S_ISGID | _stat.S_IXGRP) == (_stat.S_ISGID | _stat.S_IXGRP):
                    m &= ~_stat.S_ISGID
                node.mode = m
                self._drop_caps(node)
            node.ctime = self.now()
            self.dirty(node)
        self._mutate(op)

    def utime(self, path: str, atime_ns: int | None, mtime_ns: int | None, follow_symlinks: bool = True) -> None:
        """``utimensat(2)``: None leaves a time unchanged; ctime becomes now."""
        node = self._existing(path, follow_symlinks)
        if atime_ns is None and mtime_ns is None:
            self.check_writable()
            return

        def op():
            if atime_ns is not None:
                node.atime = self.time_trunc(atime_ns)
            if mtime_ns is not None:
                node.mtime = self.time_trunc(mtime_ns)
            node.ctime = self.now()
            self.dirty(node)
        self._mutate(op)

    # ---- information ---------------------------------------------------------------------------
    def info(self) -> dict:
        """Facts about the filesystem (what ``nuwa info --json`` shows for it)."""
        sb = self.sb
        f = sb.f
        state = []
        if f["s_state"] & 1:
            state.append("clean")
        else:
            state.append("not clean")
        if f["s_state"] & 2:
            state.append("with errors")
        return {
            "type": "ext4" if sb.incompat("extent") or sb.incompat("flex_bg") else
                    ("ext3" if sb.compat("has_journal") else "ext2"),
            "label": f["s_volume_name"].split(b"\0")[0].decode("utf-8", "replace"),
            "uuid": str(_uuid.UUID(bytes=bytes(sb.uuid))),
            "block_size": self.bs,
            "blocks": sb.blocks_count,
            "free_blocks": sb.free_blocks_count,
            "reserved_blocks": sb.r_blocks_count,
            "inodes": sb.inodes_count,
            "free_inodes": sb.free_inodes_count,
            "inode_size": sb.inode_size,
            "groups": self.groups.count,
            "blocks_per_group": sb.blocks_per_group,
            "inodes_per_group": sb.inodes_per_group,
            "features": sb.feature_names(),
            "state": " ".join(state),
            "needs_recovery": sb.incompat("needs_recovery"),
            "journal_replayed": bool(self.recovered and self.recovered.replayed),
            "orphans_cleared": len(self.orphans.cleared) if self.orphans else 0,
            "orphans_truncated": len(self.orphans.truncated) if self.orphans else 0,
            "default_hash": HASH_NAMES.get(f["s_def_hash_version"], str(f["s_def_hash_version"])),
            "creator_os": {0: "Linux", 1: "Hurd", 2: "Masix", 3: "FreeBSD", 4: "Lites"}.get(
                f["s_creator_os"], str(f["s_creator_os"])),
            "mkfs_time": f["s_mkfs_time"],
            "last_mounted": f["s_last_mounted"].split(b"\0")[0].decode("utf-8", "replace"),
            "writable": self.writable,
        }


