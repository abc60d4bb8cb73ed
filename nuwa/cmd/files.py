"""``nuwa ls``, ``cat``, ``stat``, ``copy-out`` and ``copy-in``.

The text output imitates coreutils: ``ls -l`` columns (mode string, links, owner, group, size
or device numbers, date, name ``-> target``) and ``stat``'s default format, with owner names
taken from the *image's* ``/etc/passwd`` and ``/etc/group``. ``--json`` prints one JSON
document. The formatting functions take any :class:`nuwa.fs.model.FileSystem`, so they work on
images, host directories and overlays alike.

Writing: ``copy-in`` stages everything in an :class:`nuwa.fs.overlay.Overlay` and commits once,
into a new qcow2 overlay at ``--output`` (backing file = the image) or, with ``--in-place``, into
the image itself. Host files are read without following symlinks; a host symlink that points
outside the copied tree is refused before anything is written.
"""

from __future__ import annotations

import errno
import json
import os
import stat as S
import sys
import time

import nuwa
from nuwa.errors import EXIT_CORRUPT, CorruptImageError, InvalidInputError
from nuwa.fs.content import is_zeros, pieces
from nuwa.fs.diff import TYPE_CHAR
from nuwa.fs.lsformat import Owners, id_names, ls_long_lines, major_minor as _major_minor, mode_string  # noqa: F401  (re-exported)
from nuwa.fs.model import FileSystem, check_path, join
from nuwa.patch.staging import check_target, staged

_CHUNK = 1 << 20
FILE_TYPE_NAME = {S.S_IFREG: "regular file", S.S_IFDIR: "directory", S.S_IFLNK: "symbolic link",
                  S.S_IFIFO: "fifo", S.S_IFSOCK: "socket", S.S_IFCHR: "character special file",
                  S.S_IFBLK: "block special file"}


# ---- shared helpers ---------------------------------------------------------------------------
def _open_image(args, writable: bool = False):
    return nuwa.open(args.image, writable=writable, partition=getattr(args, "partition", None),
                     unsafe_in_place=getattr(args, "unsafe_in_place", False))


def entry_json(fs: FileSystem, path: str, name: str, st, owners: Owners) -> dict:
    """One ``ls --json``/``stat --json`` record."""
    kind = S.S_IFMT(st.st_mode)
    d = {"name": name, "path": path, "type": {"-": "file", "d": "dir", "l": "symlink", "p": "fifo", "s": "sock",
                                               "c": "chr", "b": "blk"}.get(mode_string(st.st_mode)[0], "unknown"),
         "mode": f"{S.S_IMODE(st.st_mode):04o}", "mode_string": mode_string(st.st_mode), "nlink": st.st_nlink,
         "uid": st.st_uid, "gid": st.st_gid, "user": owners.user(st.st_uid), "group": owners.group(st.st_gid),
         "size": st.st_size, "blocks": st.st_blocks, "ino": st.st_ino, "atime_ns": st.st_atime_ns,
         "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns}
    if kind == S.S_IFLNK:
        d["target"] = fs.readlink(path)
    if kind in (S.S_IFCHR, S.S_IFBLK):
        d["rdev"] = list(_major_minor(st.st_rdev))
    return d


# ---- ls ---------------------------------------------------------------------------------------
def _sorted_names(fs: FileSystem, path: str) -> list[str]:
    # ls in the C locale: byte order
    return sorted(fs.readdir(path), key=lambda n: os.fsencode(n))


def _walk_dirs(fs: FileSystem, top: str, recursive: bool, errors: list[str] | None):
    """Yield the directories ``ls -R`` lists under ``top``, in its order, each once per path.

    Iterative (an image can nest directories deeper than Python's recursion limit) and, like
    GNU ls's ``active_dir_set`` (``ls.c`` ``print_dir``/``visit_dir``), it keeps the
    (device, inode) of every directory being listed on the current path: a directory entry
    that leads back to one of them (a corrupt image's hard link to an ancestor) is reported
    once as "not listing already-listed directory" instead of looping forever.
    """
    top_st = fs.stat(top)
    stack: list[tuple[str, tuple | None]] = [(top, None)]
    while stack:
        d, chain = stack.pop()
        st = top_st if d is top else fs.lstat(d)
        key = (st.st_dev, st.st_ino)
        if _in_chain(chain, key):
            if errors is not None:
                errors.append(f"{d}: not listing already-listed directory")
            continue
        names = _sorted_names(fs, d)
        yield d, names
        if recursive:
            here = (key, chain)
            subdirs = [join(d, n) for n in names if S.S_ISDIR(fs.lstat(join(d, n)).st_mode)]
            stack.extend((p, here) for p in reversed(subdirs))


def ls_text(fs: FileSystem, path: str, long: bool = False, recursive: bool = False, now: float | None = None,
            errors: list[str] | None = None) -> str:
    """What ``nuwa ls`` prints (coreutils ``ls [-l] [-R]`` with LC_ALL=C).

    Problems ls reports on stderr while listing (a directory loop in a corrupt image) are
    appended to ``errors``, one line each, without the ``ls:`` prefix.
    """
    owners = Owners(fs) if long else None
    st = fs.lstat(path)
    if S.S_ISLNK(st.st_mode) and not long:
        st = fs.stat(path)  # ls follows a symlink named on the command line unless -l
    if not S.S_ISDIR(st.st_mode):
        if long:
            return "\n".join(ls_long_lines(fs, [(path, path)], owners, now)) + "\n"
        return path + "\n"
    out: list[str] = []
    for d, names in _walk_dirs(fs, path, recursive, errors):
        if recursive:
            if out:
                out.append("")
            out.append(f"{d}:")
        if long:
            blocks = sum(fs.lstat(join(d, n)).st_blocks for n in names)
            out.append(f"total {(blocks + 1) // 2}")
            out.extend(ls_long_lines(fs, [(join(d, n), n) for n in names], owners, now))
        else:
            out.extend(names)
    return "\n".join(out) + ("\n" if out else "")


def ls_json(fs: FileSystem, path: str, recursive: bool = False, errors: list[str] | None = None) -> dict:
    """What ``nuwa ls --json`` prints: the entries (and, with -R, every level's) with full metadata.

    Each directory's entries follow it (pre-order); directory loops are reported in ``errors``
    as :func:`ls_text` does.
    """
    owners = Owners(fs)
    st = fs.stat(path) if S.S_ISLNK(fs.lstat(path).st_mode) else fs.lstat(path)
    if not S.S_ISDIR(st.st_mode):
        return {"path": path, "entries": [entry_json(fs, path, path.rsplit("/", 1)[-1], fs.lstat(path), owners)]}
    entries = []
    top = ((st.st_dev, st.st_ino), None)
    stack = [(join(path, n), n, top) for n in reversed(_sorted_names(fs, path))]
    while stack:  # iterative: see _walk_dirs
        p, n, chain = stack.pop()
        s = fs.lstat(p)
        entries.append(entry_json(fs, p, n, s, owners))
        if recursive and S.S_ISDIR(s.st_mode):
            key = (s.st_dev, s.st_ino)
            if _in_chain(chain, key):
                if errors is not None:
                    errors.append(f"{p}: not listing already-listed directory")
                continue
            here = (key, chain)
            stack.extend((join(p, c), c, here) for c in reversed(_sorted_names(fs, p)))
    return {"path": path, "recursive": recursive, "entries": entries}


def _in_chain(chain: tuple | None, key: tuple) -> bool:
    """Is ``key`` one of the (device, inode) pairs of the linked ancestor chain?"""
    while chain is not None:
        if chain[0] == key:
            return True
        chain = chain[1]
    return False


def run_ls(args) -> int:
    """``nuwa ls IMAGE PATH [-l] [-R] [--json]``."""
    path = _image_path(args.path)
    errors: list[str] = []
    with _open_image(args) as image:
        fs = image.root()
        if args.json:
            print(json.dumps(ls_json(fs, path, args.recursive, errors), indent=1))
        else:
            sys.stdout.write(ls_text(fs, path, args.long, args.recursive, errors=errors))
    sys.stdout.flush()
    for e in errors:
        print(f"nuwa ls: {e}", file=sys.stderr)
    # GNU ls says LS_FAILURE (2) for a loop; here only a damaged image has one (a hard link to
    # a directory), and DESIGN gives a damaged image 3: the rest is still listed first
    return EXIT_CORRUPT if errors else 0


def _image_path(path: str) -> str:
    try:
        check_path(path)
    except ValueError as err:
        raise InvalidInputError(str(err)) from None
    return "/" + path.lstrip("/") if path else "/"


# ---- cat --------------------------------------------------------------------------------------
def run_cat(args) -> int:
    """``nuwa cat IMAGE PATH``: the file's bytes on stdout, read in 1 MiB pieces."""
    path = _image_path(args.path)
    with _open_image(args) as image:
        fs = image.root()
        h = fs.open_handle(path)
        try:
            out = sys.stdout.buffer
            for _off, chunk in pieces(h, h.size()):
                out.write(chunk)
            out.flush()
        finally:
            h.close()
    return 0


# ---- stat -------------------------------------------------------------------------------------
def _stat_time(ns: int) -> str:
    sec, frac = divmod(ns, 10**9)
    lt = time.localtime(sec)
    return time.strftime("%Y-%m-%d %H:%M:%S", lt) + f".{frac:09d} " + time.strftime("%z", lt)


def stat_text(fs: FileSystem, path: str, name: str | None = None, owners: Owners | None = None,
              blksize: int | None = None) -> str:
    """coreutils ``stat``'s default output for ``path`` (``name`` is what the File line shows)."""
    owners = owners or Owners(fs)
    st = fs.lstat(path)
    kind = S.S_IFMT(st.st_mode)
    name = path if name is None else name
    ftype = FILE_TYPE_NAME.get(kind, "weird file")
    if kind == S.S_IFREG and st.st_size == 0:
        ftype = "regular empty file"
    shown = f"{name} -> {fs.readlink(path)}" if kind == S.S_IFLNK else name
    if blksize is None:
        try:
            blksize = fs.statvfs("/").f_bsize
        except OSError:
            blksize = 4096
    dev = st.st_dev
    lines = [
        f"  File: {shown}",
        f"  Size: {st.st_size:<10}\tBlocks: {st.st_blocks:<10} IO Block: {blksize:<6} {ftype}",
    ]
    devline = f"Device: {os.major(dev)},{os.minor(dev)}\tInode: {st.st_ino:<11} Links: "
    if kind in (S.S_IFCHR, S.S_IFBLK):
        ma, mi = _major_minor(st.st_rdev)
        devline += f"{st.st_nlink:<5} Device type: {ma},{mi}"
    else:
        devline += f"{st.st_nlink}"
    lines.append(devline)
    lines.append(f"Access: ({S.S_IMODE(st.st_mode):04o}/{mode_string(st.st_mode)})  "
                 f"Uid: ({st.st_uid:>5}/{owners.user(st.st_uid, 'UNKNOWN'):>8})   "
                 f"Gid: ({st.st_gid:>5}/{owners.group(st.st_gid, 'UNKNOWN'):>8})")
    lines.append(f"Access: {_stat_time(st.st_atime_ns)}")
    lines.append(f"Modify: {_stat_time(st.st_mtime_ns)}")
    lines.append(f"Change: {_stat_time(st.st_ctime_ns)}")
    lines.append(" Birth: -")
    return "\n".join(lines) + "\n"


def run_stat(args) -> int:
    """``nuwa stat IMAGE PATH [--json]``."""
    path = _image_path(args.path)
    with _open_image(args) as image:
        fs = image.root()
        if args.json:
            st = fs.lstat(path)
            d = entry_json(fs, path, path.rsplit("/", 1)[-1] or "/", st, Owners(fs))
            d["xattrs"] = {} if S.S_ISLNK(st.st_mode) else {
                n: fs.getxattr(path, n, follow_symlinks=False).hex() for n in sorted(fs.listxattr(path, follow_symlinks=False))}
            print(json.dumps(d, indent=1))
        else:
            sys.stdout.write(stat_text(fs, path, args.path))
    return 0


# ---- copy-out ---------------------------------------------------------------------------------
def _check_image_name(name: str, where: str) -> None:
    if name in ("", ".", "..") or "/" in name or "\0" in name:
        raise CorruptImageError(f"directory entry {name!r} is not a valid file name", where=where)


def copy_out(fs: FileSystem, path: str, dest: str, warn=None) -> list[str]:
    """Copy ``path`` (recursively) from ``fs`` to the host path ``dest``.

    Keeps modes, times, symlinks (verbatim, never followed), FIFOs and hard links; owners,
    device nodes and xattrs only where the host lets us (an unprivileged user cannot), with a
    warning per refusal. Never overwrites: ``dest`` must not exist. Returns the warnings.
    """
    warnings: list[str] = []
    warn = warn or warnings.append
    if os.path.lexists(dest):
        raise InvalidInputError("destination exists (copy-out never overwrites)", where=dest)
    parent = os.path.dirname(os.path.abspath(dest))
    pfd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    links: dict[int, tuple[int, str]] = {}
    dirs_to_time: list[tuple[int, str, object]] = []
    try:
        _copy_out_one(fs, path, pfd, os.path.basename(os.path.abspath(dest)), links, dirs_to_time, warn)
        for dfd, name, st in reversed(dirs_to_time):  # directory times last: filling them changed mtime
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)
    finally:
        for dfd, _, _ in dirs_to_time:
            if dfd != pfd:
                try:
                    os.close(dfd)
                except OSError:
                    pass
        os.close(pfd)
    return warnings


def _copy_out_one(fs, path, dfd, name, links, dirs_to_time, warn) -> None:
    st = fs.lstat(path)
    kind = S.S_IFMT(st.st_mode)
    if kind != S.S_IFDIR and st.st_nlink > 1 and st.st_ino in links:
        ofd, oname = links[st.st_ino]
        os.link(oname, name, src_dir_fd=ofd, dst_dir_fd=dfd, follow_symlinks=False)
        return
    if kind == S.S_IFDIR:
        os.mkdir(name, 0o700, dir_fd=dfd)
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dfd)
        dirs_to_time.append((sub, ".", st))
        for n in sorted(fs.readdir(path)):
            _check_image_name(n, path)
            _copy_out_one(fs, join(path, n), sub, n, links, dirs_to_time, warn)
    elif kind == S.S_IFLNK:
        os.symlink(fs.readlink(path), name, dir_fd=dfd)
    elif kind == S.S_IFREG:
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        try:
            h = fs.open_handle(path)
            try:
                end = 0
                for off, chunk in pieces(h, st.st_size):
                    if is_zeros(chunk):
                        os.lseek(fd, len(chunk), os.SEEK_CUR)  # keep holes
                    else:
                        os.write(fd, chunk)
                    end = off + len(chunk)
                os.ftruncate(fd, end)
            finally:
                h.close()
        finally:
            os.close(fd)
    elif kind == S.S_IFIFO:
        os.mkfifo(name, 0o600, dir_fd=dfd)
    else:
        try:
            os.mknod(name, kind | 0o600, st.st_rdev, dir_fd=dfd)
        except PermissionError:
            warn(f"{path}: device node not copied (needs root)")
            return
    if kind != S.S_IFDIR and st.st_nlink > 1:
        links[st.st_ino] = (dfd, name)
    _copy_out_meta(fs, path, st, dfd, name, warn)


def _copy_out_meta(fs, path, st, dfd, name, warn) -> None:
    kind = S.S_IFMT(st.st_mode)
    try:
        os.chown(name, st.st_uid, st.st_gid, dir_fd=dfd, follow_symlinks=False)
    except PermissionError:
        pass  # an unprivileged user keeps its own ownership, as cp -p does
    if kind != S.S_IFLNK:
        os.chmod(name, S.S_IMODE(st.st_mode), dir_fd=dfd, follow_symlinks=False)
        for x in fs.listxattr(path, follow_symlinks=False):
            try:
                os.setxattr(f"/proc/self/fd/{dfd}/{name}", x, fs.getxattr(path, x, follow_symlinks=False),
                            follow_symlinks=False)
            except OSError as e:
                warn(f"{path}: xattr {x} not copied ({e.strerror})")
    if kind != S.S_IFDIR:
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dfd, follow_symlinks=False)


def run_copy_out(args) -> int:
    """``nuwa copy-out IMAGE PATH DEST``: into DEST/basename when DEST is a directory."""
    path = _image_path(args.path)
    dest = args.dest
    if os.path.isdir(dest) and not os.path.islink(dest):
        dest = os.path.join(dest, path.rstrip("/").rsplit("/", 1)[-1] or "root")
    with _open_image(args) as image:
        for w in copy_out(image.root(), path, dest):
            print(f"nuwa copy-out: warning: {w}", file=sys.stderr)
    return 0


# ---- copy-in ----------------------------------------------------------------------------------
def check_host_sources(srcs: list[str]) -> None:
    """Refuse, before anything is written, host symlinks that point outside what is copied."""
    for src in srcs:
        if not os.path.lexists(src):
            raise InvalidInputError("no such file or directory", where=src)
        top = os.path.abspath(src)
        for dirpath, dirs, files in os.walk(top) if os.path.isdir(top) and not os.path.islink(top) else [(os.path.dirname(top), [], [os.path.basename(top)])]:
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                if os.path.islink(p):
                    target = os.readlink(p)
                    resolved = os.path.normpath(os.path.join(os.path.dirname(p), target))
                    inside = not os.path.isabs(target) and (resolved == top or resolved.startswith(top + os.sep))
                    if not inside or p == top:
                        raise InvalidInputError(f"host symlink points outside the copied tree (-> {target}); "
                                                "refusing to copy it", where=p)


def copy_in(fs: FileSystem, srcs: list[str], destdir: str) -> None:
    """Copy host files/trees into directory ``destdir`` of ``fs`` (which should be an Overlay).

    Modes and mtimes are kept; owners become root:root (host uids mean nothing in the image);
    symlinks are copied verbatim (they were checked by :func:`check_host_sources`); hard links
    inside the copied trees stay hard links. Host symlinks are never followed.
    """
    st = fs.stat(destdir)
    if not S.S_ISDIR(st.st_mode):
        raise fs_error_notdir(destdir)
    links: dict[tuple[int, int], str] = {}
    for src in srcs:
        name = os.path.basename(os.path.abspath(src))
        _copy_in_one(fs, os.path.abspath(src), join(destdir, name), links)


def fs_error_notdir(path: str) -> OSError:
    return OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)


def _copy_in_one(fs: FileSystem, host: str, dest: str, links: dict) -> None:
    st = os.lstat(host)
    kind = S.S_IFMT(st.st_mode)
    key = (st.st_dev, st.st_ino)
    if kind != S.S_IFDIR and st.st_nlink > 1 and key in links:
        fs.link(links[key], dest)
        return
    if kind == S.S_IFDIR:
        if not fs.lexists(dest):
            fs.mkdir(dest, 0o700)
        for n in sorted(os.listdir(host)):
            _copy_in_one(fs, os.path.join(host, n), join(dest, n), links)
    elif kind == S.S_IFLNK:
        fs.symlink(os.readlink(host), dest)
    elif kind == S.S_IFREG:
        fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            h = fs.open_handle(dest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                off = 0
                while True:
                    chunk = os.pread(fd, _CHUNK, off)
                    if not chunk:
                        break
                    h.pwrite(off, chunk)
                    off += len(chunk)
            finally:
                h.close()
        finally:
            os.close(fd)
    else:
        fs.mknod(dest, kind | 0o600, st.st_rdev)
    if kind != S.S_IFDIR and st.st_nlink > 1:
        links[key] = dest
    fs.chown(dest, 0, 0, follow_symlinks=False)
    if kind != S.S_IFLNK:
        fs.chmod(dest, S.S_IMODE(st.st_mode), follow_symlinks=False)
    fs.utime(dest, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=False)


def run_copy_in(args) -> int:
    """``nuwa copy-in IMAGE SRC... DESTDIR [--output OUT | --in-place]``."""
    if len(args.paths) < 2:
        raise InvalidInputError("copy-in needs at least one SRC and a DESTDIR")
    *srcs, destdir = args.paths
    destdir = _image_path(destdir)
    check_target("copy-in", args.output, args.in_place)
    check_host_sources(srcs)
    with _open_image(args, writable=bool(args.in_place)) as image:
        with staged(image, "copy-in", output=args.output, in_place=args.in_place) as st:
            copy_in(st.fs, srcs, destdir)
    return 0
