"""``systemd-hwdb [--usr] [--strict] [--root=/] update`` (systemd 252, Debian's build): the
hardware database's binary index, written into the image as the real program writes it.

udev's postinst runs ``systemd-hwdb --usr update`` on configure and on its
``/lib/udev/hwdb.d`` trigger. What the real program does (``src/hwdb/hwdb.c``,
``hwdb_update`` in ``src/shared/hwdb-util.c``), and so the model:

- sources: every ``*.hwdb`` in ``/etc/udev/hwdb.d`` then ``/lib/udev/hwdb.d`` (Debian builds
  with split-usr, so UDEVLIBEXECDIR is ``/lib/udev``), ``conf_files_list_strv`` with no flags:
  each directory path is first resolved through the image's symlinks (a merged-/usr image
  reads ``/usr/lib/udev/hwdb.d``, and that resolved name is what ``hwdb.bin`` records), a
  directory reached twice is read once, names starting with ``.`` are skipped, a name found
  in ``/etc`` hides the same name further down, and the files are read in ``strcmp`` order of
  their names with priorities 1, 2, ... No type or mask check: an empty file or a link to
  ``/dev/null`` takes a priority and adds nothing; a directory, a dangling link or an
  over-long line (1 MiB) is an import error, silent, that only ``--strict`` turns into exit
  status 1 (the file is still written). Syntax problems are warnings (``hwdb_build``), never
  failures, even with ``--strict``;
- output: ``/etc/udev/hwdb.bin`` (``--usr``: ``/lib/udev/hwdb.bin``), missing parents made
  0755 (less the umask), written to a temporary file in that directory, mode 0444, then
  renamed over the old one (a symlink there is replaced, a hard link keeps the old bytes);
  the bytes are ``hwdb_trie``'s. With no source at all the index is removed instead, with
  "No hwdb files found, ..." on stderr;
- errors (stderr, status 1): a usage error as glibc's getopt prints it, "Command verb
  required.", "Unknown command verb X.", "Too many arguments.", "Failed to write database
  P: ERR", "Failed to remove compiled hwdb database P: ERR".

Deferred: ``query`` (it reads the index, and nothing in a maintainer script needs its
output), ``--help``/``--version``, ``--root`` other than ``/``, ``SYSTEMD_LOG_*`` in the
environment (they change what is printed), a source that is a FIFO, socket or device, or
leads into ``/dev``, ``/proc``, ``/sys`` or ``/run`` (other than a link to ``/dev/null``:
empty).
"""

from __future__ import annotations

import errno
import os
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.commands.services.hwdb_build import build
from nuwa.script.context import Defer, Invocation

#: hwdb-util.c's conf_file_dirs, in priority order
CONF_DIRS = ("/etc/udev/hwdb.d", "/lib/udev/hwdb.d")
#: meson's udevlibexecdir for Debian's -Dsplit-usr=true build
UDEVLIBEXECDIR = "/lib/udev"
ETC_DIR = "/etc/udev"
#: file systems the booted system mounts over the image's directories
RUNTIME = ("/dev/", "/proc/", "/sys/", "/run/")

_SPEC = _args.spec("sr:h", {"help": "h", "version": ("version", _args.NO), "usr": ("usr", _args.NO),
                            "strict": "s", "root": "r"})


def _b(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def path_join(*parts: str) -> str:
    """systemd's ``path_join``: a ``/`` between parts unless one is already there (empty parts
    skipped, duplicate slashes kept: ``path_join("/", "/etc")`` is ``//etc``)."""
    out = ""
    slash = True
    for p in parts:
        if not p:
            continue
        if not slash and not p.startswith("/"):
            out += "/"
        out += p
        slash = p.endswith("/")
    return out


def source_files(inv: Invocation) -> list[str]:
    """``conf_files_list_strv(&files, ".hwdb", root, 0, conf_file_dirs)`` in the image."""
    dirs: list[str] = []
    for d in CONF_DIRS:
        # path_strv_resolve: a missing path stays as it is, any other error drops it
        try:
            d = canonicalize(inv, d, "e")
        except OSError as e:
            if e.errno != errno.ENOENT:
                continue
        if d not in dirs:
            dirs.append(d)
    chosen: dict[str, str] = {}
    for d in dirs:
        try:
            names = inv.fs.readdir(d)
        except OSError:
            # files_add: a directory that cannot be opened is skipped
            continue
        for n in names:
            if n.startswith(".") or not n.endswith(".hwdb") or n in chosen:
                continue
            chosen[n] = path_join(d, n)
    return [chosen[n] for n in sorted(chosen, key=_b)]


def read_source(inv: Invocation, path: str) -> bytes | int:
    """The bytes ``import_file`` reads from ``path``, or the errno it fails with."""
    try:
        target = canonicalize(inv, path, "m")
    except OSError:
        target = path
    if target == "/dev/null":
        # a masking link reads as empty, at boot as in a chroot, whatever the image's /dev holds
        return b""
    if target.startswith(RUNTIME):
        raise Defer(f"systemd-hwdb update: {path} leads to {target}, on a file system mounted at boot"
                    " (not modelled)")
    try:
        st = inv.fs.stat(path)
    except OSError as e:
        return e.errno or errno.EIO
    if _stat.S_ISDIR(st.st_mode):
        return errno.EISDIR  # fopen() succeeds on a directory, the first read fails
    if not _stat.S_ISREG(st.st_mode):
        raise Defer(f"systemd-hwdb update: {path} is not a regular file (reading it is not modelled)")
    try:
        return inv.fs.read_bytes(path)
    except OSError as e:
        return e.errno or errno.EIO


def _write(inv: Invocation, target: str, data: bytes) -> OSError | None:
    """``mkdir_parents_label`` then ``trie_store``'s temporary file, fchmod 0444 and rename."""
    fs = inv.fs
    parent = os.path.dirname(target)
    try:
        fs.makedirs(parent, 0o755 & ~inv.umask)
    except OSError:
        pass  # (void) mkdir_parents_label(): the write below reports the problem
    n = 0
    while fs.lexists(f"{parent}/.#hwdb.binnuwa{n:02d}"):
        n += 1
    tmp = f"{parent}/.#hwdb.binnuwa{n:02d}"
    try:
        fs.write_bytes(tmp, data, 0o600)
        fs.chmod(tmp, 0o444)
    except OSError as e:
        return e
    try:
        fs.rename(tmp, target)
    except OSError as e:
        fs.unlink(tmp)
        return e
    return None


def systemd_hwdb_update(inv: Invocation) -> int:
    """``systemd-hwdb [--usr] [--strict] [--root=/] update``: see the module note."""
    prog = inv.argv[0] if inv.argv else "systemd-hwdb"
    usr = strict = False
    root: str | None = None
    operands: list[str] = []
    for ev in _args.events(inv, _SPEC, unknown_is_error=True):
        if ev[0] == "error":
            inv.err(f"{prog}: {ev[1].text}\n")
            return 1
        if ev[0] == "operands":
            operands = ev[1]
            break
        key, val = ev[1], ev[2]
        if key in ("h", "version"):
            raise Defer(f"systemd-hwdb {'--help' if key == 'h' else '--version'} is not modelled")
        if key == "usr":
            usr = True
        elif key == "s":
            strict = True
        elif key == "r":
            root = val
    logvars = sorted(k for k in inv.env if k.startswith("SYSTEMD_LOG_"))
    if logvars:
        raise Defer(f"systemd-hwdb with {logvars[0]} set (its effect on the messages is not modelled)")
    if not operands:
        inv.err("Command verb required.\n")
        return 1
    if operands[0] == "query":
        raise Defer("systemd-hwdb query is not modelled (it only reads the index)")
    if operands[0] != "update":
        inv.err(f"Unknown command verb {operands[0]}.\n")
        return 1
    if len(operands) > 1:
        inv.err("Too many arguments.\n")
        return 1
    if root is not None and (root == "" or root.strip("/") != ""):
        raise Defer(f"systemd-hwdb --root={root}: only the image's own root is modelled")
    bin_dir = UDEVLIBEXECDIR if usr else ETC_DIR
    target = bin_dir + "/hwdb.bin"
    shown = path_join(root or "", bin_dir, "hwdb.bin")

    files = source_files(inv)
    if not files:
        try:
            inv.fs.unlink(target)
        except OSError as e:
            if e.errno != errno.ENOENT:
                inv.err(f"Failed to remove compiled hwdb database {shown}: {os.strerror(e.errno)}\n")
                return 1
            inv.err("No hwdb files found, skipping.\n")
            return 0
        inv.err(f"No hwdb files found, compiled hwdb database {shown} removed.\n")
        return 0

    sources = [(_b(f), read_source(inv, f)) for f in files]
    data, warnings, import_error = build(sources)
    for w in warnings:
        inv.err(w)
    e = _write(inv, target, data)
    if e is not None:
        inv.err(f"Failed to write database {shown}: {os.strerror(e.errno)}\n")
        return 1
    return 1 if strict and import_error else 0
