"""``dpkg-divert`` (dpkg 1.21.22): add, remove, list and query diversions in the image.

Mirrors ``src/divert/main.c``: ``[--add] FILE``, ``--remove FILE``, ``--list [GLOB...]``,
``--listpackage FILE``, ``--truename FILE``; ``--package PKG`` / ``--local`` (the package
defaults to ``DPKG_MAINTSCRIPT_PACKAGE``, as in a maintainer script), ``--divert TO``
(default ``FILE.distrib``), ``--rename``/``--no-rename`` (1.21 still defaults to no rename and
warns), ``--quiet``, ``--test``, ``--admindir``/``--instdir``/``--root``. Messages, refusals
("clashes with", "mismatch on package"), the Essential-package warning, the shared
(Multi-Arch: same) removal rule and the moves of the file aside and back are dpkg's.

The ``diversions`` file is rewritten the way dpkg writes it: every diversion, in the order of
dpkg's file-name hash table (FNV-1a, 262139 bins, creation order within a bin), through
``diversions-new`` with the previous file kept as ``diversions-old``
(:func:`nuwa.deb.diversions.atomic_save`).
"""

from __future__ import annotations

import errno
import stat as st

from nuwa.deb.diversions import Diversion, Diversions
from nuwa.deb.infodb import InfoDB
from nuwa.deb.status import StatusFile
from nuwa.errors import CorruptImageError
from nuwa.script.commands.dpkg.common import DpkgExit, Opt, Tool
from nuwa.script.commands.dpkg.query import FSYS_BINS, fnv_hash, node_name
from nuwa.script.context import Defer, Invocation
from nuwa.script.expand import match

HINT = "Use --help for help about diverting files."

OPTS = [
    Opt("add", None, 0, "add", True), Opt("remove", None, 0, "remove", True), Opt("list", None, 0, "list", True),
    Opt("listpackage", None, 0, "listpackage", True), Opt("truename", None, 0, "truename", True),
    Opt("help", "?", 0, "help", True), Opt("version", None, 0, "version", True),
    Opt("admindir", None, 1, "admindir"), Opt("instdir", None, 1, "instdir"), Opt("root", None, 1, "root"),
    Opt("divert", None, 1, "divert"), Opt("package", None, 1, "package"), Opt("local", None, 0, "local"),
    Opt("quiet", None, 0, "quiet"), Opt("rename", None, 0, "rename"), Opt("no-rename", None, 0, "no-rename"),
    Opt("test", None, 0, "test"),
]


def hash_order(items: list[Diversion], created: list[str]) -> list[Diversion]:
    """Diversions in dpkg's ``fsys_hash_iter`` order of their diverted names."""
    first: dict[str, int] = {}
    for n in created:
        first.setdefault(n, len(first))
    return sorted(items, key=lambda d: (fnv_hash(d.path[1:]) % FSYS_BINS, first.get(d.path, 1 << 30)))


def describe(pkg: str | None, frm: str, to: str | None) -> str:
    """``varbuf_diversion``."""
    if pkg is None:
        return f"local diversion of {frm}" + (f" to {to}" if to is not None else "")
    return f"diversion of {frm}" + (f" to {to}" if to is not None else "") + f" by {pkg}"


class Divert:
    """One run of dpkg-divert."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.tool = Tool(inv, "dpkg-divert", HINT)
        self.match_any = True
        self.package: str | None = None
        self.divert_to: str | None = None
        self.verbose = True
        self.test = False
        self.rename: int = -1

    # ---- options ------------------------------------------------------------------------------
    def set_option(self, o: Opt, v: str | None) -> None:
        t = self.tool
        if o.key in ("package", "local"):
            self.match_any = False
            self.package = v
            if v is not None and "\n" in v:
                t.badusage("package may not contain newlines")
        elif o.key == "divert":
            self.divert_to = v
            if not v.startswith("/"):
                t.badusage(f'filename "{v}" is not absolute')
            if "\n" in v:
                t.badusage("divert-to may not contain newlines")
        elif o.key == "quiet":
            self.verbose = False
        elif o.key == "rename":
            self.rename = 1
        elif o.key == "no-rename":
            self.rename = 0
        elif o.key == "test":
            self.test = True

    def run(self) -> int:
        t = self.tool
        rest = t.parse(self.inv.argv[1:], OPTS, self.set_option)
        env_pkg = self.inv.env.get("DPKG_MAINTSCRIPT_PACKAGE")
        if self.match_any and env_pkg is not None:
            self.match_any = False
            self.package = env_pkg
        if self.package is not None:
            self.package = self.package.lower()  # pkg_hash_find_set names sets in lower case
        action = t.action.key if t.action else "add"
        if action in ("help", "version"):
            raise Defer(f"dpkg-divert --{action} is not modelled")
        return getattr(self, "act_" + action)(rest)

    # ---- helpers ------------------------------------------------------------------------------
    def rename_setup(self) -> None:
        if self.rename < 0:
            self.rename = 0
            self.tool.warning("please specify --no-rename explicitly, the default will change to --rename in 1.20.x")

    def single(self, args: list[str]) -> str:
        if len(args) != 1:
            self.tool.badusage(f"--{self.tool.action.long if self.tool.action else 'add'} needs a single argument")
        f = args[0]
        if not f.startswith("/"):
            self.tool.badusage(f'filename "{f}" is not absolute')
        if "\n" in f:
            self.tool.badusage("file may not contain newlines")
        return f

    def load(self) -> Diversions:
        self.admindir = self.tool.image_admindir()
        try:
            StatusFile.load(self.tool.fs, self.admindir + "/status")
            div = Diversions.load(self.tool.fs, self.admindir)
        except CorruptImageError as e:
            raise Defer(f"dpkg-divert: the package database cannot be read ({e})") from None
        seen_from, seen_to = set(), set()
        for d in div.items:  # ensure_diversions: conflicting entries are an error
            if d.path in seen_from | seen_to or d.divert_to in seen_from | seen_to:
                self.tool.error(f"conflicting diversions involving '{d.path}' or '{d.divert_to}'")
            seen_from.add(d.path)
            seen_to.add(d.divert_to)
        self.created = [n for d in div.items for n in (d.path, d.divert_to)]
        return div

    def current(self, filename: str) -> str:
        """``diversion_current``."""
        if self.match_any:
            return f"any diversion of {filename}" + (f" to {self.divert_to}" if self.divert_to is not None else "")
        return describe(self.package, filename, self.divert_to)

    def fspath(self, name: str) -> str:
        """``file_init``: instdir + name, as a path of the filesystem model."""
        return self.tool.root_path(name) if self.tool.instdir else name

    def lstat(self, path: str):
        try:
            return self.tool.fs.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as e:
            self.tool.error(f"cannot stat file '{self.shown(path)}': {e.strerror}")

    def shown(self, path: str) -> str:
        return path

    def owners_of(self, path: str, pkgname: str | None = None, essential: bool = False) -> list[tuple[str, str]]:
        """(package, arch) of the installed packages listing ``path`` (restricted as asked)."""
        status = StatusFile.load(self.tool.fs, self.admindir + "/status")
        info = InfoDB(self.tool.fs, self.admindir)
        out = []
        for e in status.entries:
            if e.status == "not-installed":
                continue
            if pkgname is not None and e.name != pkgname:
                continue
            if essential and not e.essential:
                continue
            stem = f"{e.name}:{e.arch}" if e.multiarch == "same" and e.arch and info.format() >= 1 else e.name
            data = info.read(stem, "list")
            if data is None:
                continue
            for ln in data.decode("utf-8", "surrogateescape").split("\n"):
                if ln.endswith("/"):
                    ln = ln[:-1]
                if ln and node_name(ln) == path:
                    out.append((e.name, e.arch))
                    break
        return out

    def check_rename(self, src: str, dst: str) -> bool:
        """``check_rename``: False when there is nothing to move; refuses to overwrite."""
        s = self.lstat(src)
        if s is None:
            return False
        d = self.lstat(dst)
        for p in (src, dst):
            self.check_writable_dir(p)
        if d is not None and (s.st_dev, s.st_ino) != (d.st_dev, d.st_ino):
            self.tool.error(f"rename involves overwriting '{dst}' with\n  different file '{src}', not allowed")
        return True

    def check_writable_dir(self, path: str) -> None:
        tmp = path + ".dpkg-divert.tmp"
        fs = self.tool.fs
        try:
            fs.write_bytes(tmp, b"", 0o600)
            fs.unlink(tmp)
        except OSError as e:
            self.tool.error(f"error checking '{path}': {e.strerror}")

    def file_rename(self, src: str, dst: str) -> None:
        fs = self.tool.fs
        if self.lstat(src) is None:
            return
        if self.lstat(dst) is not None:
            fs.unlink(src)
            return
        try:
            fs.rename(src, dst)
        except OSError as e:
            if e.errno != errno.EXDEV:
                raise Defer(f"dpkg-divert: cannot rename '{src}' to '{dst}': {e.strerror}") from None
            raise Defer("dpkg-divert: a rename across filesystems is not modelled") from None

    def save(self, div: Diversions) -> None:
        div.items = hash_order(div.items, self.created)
        div.save(self.tool.fs)

    # ---- actions ------------------------------------------------------------------------------
    def act_add(self, args: list[str]) -> int:
        t = self.tool
        self.match_any = False
        self.rename_setup()
        filename = self.single(args)
        div = self.load()
        src = self.fspath(filename)
        s = self.lstat(src)
        if s is not None and st.S_ISDIR(s.st_mode):
            t.badusage("cannot divert directories")
        frm = node_name(filename)
        if self.divert_to is None:
            self.divert_to = filename + ".distrib"
        if filename == self.divert_to:
            t.badusage(f"cannot divert file '{filename}' to itself")
        to = node_name(self.divert_to)
        self.created += [frm, to]
        old_from = div.by_path(frm) or div.by_target(frm)
        old_to = div.by_path(to) or div.by_target(to)
        if old_from is not None or old_to is not None:
            d_from = div.by_path(frm)
            if d_from is not None and d_from.divert_to == to and d_from.package == self.package:
                if self.verbose:
                    t.out(f"Leaving '{describe(d_from.package, d_from.path, d_from.divert_to)}'\n")
                return 0
            d = old_from or old_to
            t.error(f"'{self.current(filename)}' clashes with '{describe(d.package, d.path, d.divert_to)}'")
        new = Diversion(frm, to, self.package)
        if self.verbose:
            t.out(f"Adding '{describe(self.package, frm, to)}'\n")
        dst = self.fspath(self.divert_to)
        rename = bool(self.rename) and self.check_rename(src, dst)
        if rename and self.package is not None and self.owners_of(frm, self.package):
            if self.verbose:
                t.out(f"Ignoring request to rename file '{filename}' owned by diverting package '{self.package}'\n")
            rename = False
        if rename and self.owners_of(frm, essential=True):
            t.warning(f"diverting file '{filename}' from an Essential package with rename is dangerous, use --no-rename")
        if not self.test:
            div.items.append(new)
            self.save(div)
            if rename:
                self.file_rename(src, dst)
        return 0

    def act_remove(self, args: list[str]) -> int:
        t = self.tool
        self.rename_setup()
        filename = self.single(args)
        div = self.load()
        frm = node_name(filename)
        d = div.by_path(frm)
        if d is None:
            if self.verbose:
                t.out(f"No diversion '{self.current(filename)}', none removed.\n")
            return 0
        if self.divert_to is not None and self.divert_to != d.divert_to:
            t.error(f"mismatch on divert-to\n  when removing '{self.current(filename)}'\n"
                    f"  found '{describe(d.package, d.path, d.divert_to)}'")
        if not self.match_any and self.package != d.package:
            t.error(f"mismatch on package\n  when removing '{self.current(filename)}'\n"
                    f"  found '{describe(d.package, d.path, d.divert_to)}'")
        arch = self.inv.env.get("DPKG_MAINTSCRIPT_ARCH")
        if self.package is not None and arch:
            if any(a != arch for _, a in self.owners_of(frm, self.package)):
                if self.verbose:
                    t.out(f"Ignoring request to remove shared diversion '{describe(d.package, d.path, d.divert_to)}'.\n")
                return 0
        if self.verbose:
            t.out(f"Removing '{describe(d.package, d.path, d.divert_to)}'\n")
        src, dst = self.fspath(d.divert_to), self.fspath(d.path)
        div.items.remove(d)
        rename = bool(self.rename) and self.check_rename(src, dst)
        if rename and not self.test:
            self.file_rename(src, dst)
        if not self.test:
            self.save(div)
        return 0

    def act_list(self, args: list[str]) -> int:
        div = self.load()
        pats = list(args) or ["*"]
        for d in hash_order(div.items, self.created):
            if any(match(p, d.package or ":") or match(p, d.divert_to) or match(p, d.path) for p in pats):
                self.tool.out(describe(d.package, d.path, d.divert_to) + "\n")
        return 0

    def act_truename(self, args: list[str]) -> int:
        filename = self.single(args)
        div = self.load()
        d = div.by_path(node_name(filename))
        self.tool.out((d.divert_to if d is not None else filename) + "\n")
        return 0

    def act_listpackage(self, args: list[str]) -> int:
        filename = self.single(args)
        div = self.load()
        n = node_name(filename)
        d = div.by_path(n) or div.by_target(n)
        if d is not None:
            self.tool.out(("LOCAL" if d.package is None else d.package) + "\n")
        return 0


def dpkg_divert(inv: Invocation) -> int:
    """The ``dpkg-divert`` model."""
    try:
        return Divert(inv).run()
    except DpkgExit as e:
        return e.status
