"""depmod's configuration and the facts about the image's kmod that its output depends on.

- ``depmod.d`` files (kmod 30 ``tools/depmod.c``: ``cfg_files_list``, ``cfg_file_parse``):
  ``search``, ``override``, ``external``, ``exclude``; ``include``/``make_map_files`` are
  accepted and ignored, anything else is reported as depmod reports it and skipped. Every
  list is built by prepending, as the C code does, because the search-priority arithmetic
  depends on that order.
- which kmod the image has: its version (dpkg's status file) decides the set of files
  depmod writes, and its build features (the libraries ``/bin/kmod`` links: liblzma,
  libzstd, libz) decide which module extensions it reads and which compressions it opens.
"""

from __future__ import annotations

import posixpath
import re
import stat as st
from dataclasses import dataclass, field

from nuwa.script.commands.caches.elf import ElfError, read_elf
from nuwa.script.commands._memo import ContentMemo
from nuwa.script.context import Defer, Invocation

#: ``default_cfg_paths`` (SYSCONFDIR is /etc on Debian), in priority order
CFG_PATHS = ("/etc/depmod.d", "/run/depmod.d", "/usr/local/lib/depmod.d", "/lib/depmod.d")
#: kmod releases whose depmod output this model reproduces byte for byte
MODELLED_KMOD = ("30",)

SEARCH_PATH, SEARCH_BUILTIN, SEARCH_EXTERNAL = 0, 1, 2


@dataclass
class Cfg:
    """``struct cfg``: each list head-first, as ``cfg_*_add`` prepend."""

    kversion: str
    dirname: str
    sym_prefix: str = "\0"
    check_symvers: bool = False
    print_unknown: bool = False
    warn_dups: bool = False
    overrides: list[str] = field(default_factory=list)  # "subdir/modname"
    searches: list[tuple[int, str]] = field(default_factory=list)
    externals: list[str] = field(default_factory=list)
    excludes: list[str] = field(default_factory=list)


def kernel_matches(kversion: str, pattern: str) -> bool:
    """``cfg_kernel_matches``: ``*`` or an extended regular expression found in the version."""
    if pattern == "*":
        return True
    try:
        return re.search(pattern, kversion) is not None
    except re.error:
        return False


def _read_lines(data: bytes) -> list[tuple[int, str]]:
    """``freadline_wrapped``: lines joined across a trailing backslash, with the number of
    the last physical line each one ends on."""
    out = []
    buf = ""
    n = 0
    for raw in data.decode("utf-8", "surrogateescape").split("\n"):
        n += 1
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        out.append((n, buf + raw))
        buf = ""
    if out and out[-1][1] == "" and data.endswith(b"\n"):
        out.pop()  # the split's empty tail after the final newline is not a line
    return out


def parse_file(inv: Invocation, cfg: Cfg, path: str, shown: str, log) -> None:
    """``cfg_file_parse`` of one ``.conf`` file (``shown`` is the name depmod prints)."""
    data = inv.fs.read_bytes(path)
    for linenum, line in _read_lines(data):
        if line == "" or line[0] == "#":
            continue
        words = [w for w in re.split(r"[\t ]+", line) if w]
        if not words:
            continue
        cmd, args = words[0], words[1:]
        if cmd == "search":
            for sp in args:
                kind = SEARCH_BUILTIN if sp == "built-in" else SEARCH_EXTERNAL if sp == "external" else SEARCH_PATH
                cfg.searches.insert(0, (kind, sp))
        elif cmd == "override" and len(args) >= 3:
            if kernel_matches(cfg.kversion, args[1]):
                cfg.overrides.insert(0, f"{args[2]}/{args[0]}")
        elif cmd == "external" and len(args) >= 2:
            if kernel_matches(cfg.kversion, args[0]):
                cfg.externals.insert(0, args[1])
        elif cmd == "exclude":
            for sp in args:
                cfg.excludes.insert(0, sp)
        elif cmd in ("include", "make_map_files"):
            pass  # INF "command not implemented yet": not shown at depmod's default verbosity
        else:
            log("ERROR", f"{shown}:{linenum}: ignoring bad line starting with '{cmd}'\n")


def load(inv: Invocation, cfg: Cfg, paths: list[str] | None, log) -> None:
    """``cfg_load``: the ``.conf`` files of every configuration path, one per name (the first
    path holding a name wins), parsed in name order; then ``search updates`` by default."""
    files: dict[str, str] = {}
    for base in paths or CFG_PATHS:
        ipath = inv.path(base)
        try:
            s = inv.fs.stat(ipath)
        except OSError:
            continue
        if not st.S_ISDIR(s.st_mode):
            files.setdefault(posixpath.basename(base), base)
            continue
        try:
            names = inv.fs.readdir(ipath)
        except OSError as err:
            log("ERROR", f"files list {base}: {err.strerror}\n")
            continue
        for name in names:
            if name.startswith("."):
                continue
            if len(name) < 6 or not name.endswith(".conf"):
                continue
            try:
                if st.S_ISDIR(inv.fs.stat(posixpath.join(ipath, name)).st_mode):
                    log("ERROR", f"Directories inside directories are not supported: {base}/{name}\n")
                    continue
            except OSError:
                pass
            files.setdefault(name, f"{base}/{name}")
    for name in sorted(files, key=lambda n: n.encode("utf-8", "surrogateescape")):
        shown = files[name]
        try:
            parse_file(inv, cfg, inv.path(shown), shown, log)
        except OSError as err:
            log("ERROR", f"file parse {shown}: {err.strerror}\n")
    if not cfg.searches:
        cfg.searches.insert(0, (SEARCH_PATH, "updates"))


def kmod_version(inv: Invocation) -> str | None:
    """The upstream version of the image's installed ``kmod`` package (``30`` for
    ``30+20221128-1``), or None when dpkg does not list it as installed."""
    try:
        status = inv.fs.read_bytes("/var/lib/dpkg/status")
    except OSError:
        return None
    return _version_memo(status)


def _kmod_version_in(status: bytes) -> str | None:
    """kmod's upstream version in a dpkg status file's bytes (memoised by content: an
    initramfs build asks for it at every modprobe and modinfo)."""
    for para in status.decode("utf-8", "replace").split("\n\n"):
        if re.search(r"^Package: kmod$", para, re.M) and re.search(r"^Status: install ok installed$", para, re.M):
            m = re.search(r"^Version: (?:\d+:)?([0-9.]+)", para, re.M)
            return m.group(1) if m else None
    return None


def kmod_features(inv: Invocation, prog: str = "depmod") -> frozenset[str]:
    """Compression support of the image's kmod build, from the libraries ``/bin/kmod``
    needs (``kmod --version`` would say ``+ZSTD +XZ -ZLIB``, but image code never runs)."""
    for p in ("/usr/bin/kmod", "/bin/kmod"):
        try:
            with inv.fs.open(p, "rb") as f:
                data = f.read()
        except OSError:
            continue
        try:
            return _features_memo(data)
        except ElfError as exc:
            raise Defer(f"{prog}: cannot tell which compressions {p} supports: {exc}") from None
    raise Defer(f"{prog}: the image has no /bin/kmod to tell which module compressions it reads")


def _kmod_features_of(data: bytes) -> frozenset[str]:
    """The compressions a ``kmod`` binary's bytes link a library for (memoised by content)."""
    info = read_elf(lambda off, n: data[off:off + n], len(data))
    feats = set()
    for lib in info.needed:
        if lib.startswith("liblzma.so"):
            feats.add("xz")
        elif lib.startswith("libzstd.so"):
            feats.add("zstd")
        elif lib.startswith("libz.so"):
            feats.add("zlib")
    return frozenset(feats)


_version_memo = ContentMemo(_kmod_version_in)
_features_memo = ContentMemo(_kmod_features_of)


def image_kmod(inv: Invocation) -> tuple[str, frozenset[str]]:
    """Version and features of the image's kmod; defers (naming the program) when the
    version is not modelled."""
    prog = inv.name or "depmod"
    ver = kmod_version(inv)
    if ver is None:
        raise Defer(f"{prog}: the kmod package is not installed in the image")
    if ver.split(".")[0] not in MODELLED_KMOD:
        raise Defer(f"{prog}: kmod {ver} is not modelled (the model reproduces kmod {', '.join(MODELLED_KMOD)})")
    return ver, kmod_features(inv, prog)
