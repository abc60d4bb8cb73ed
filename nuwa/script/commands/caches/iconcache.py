"""The ``gtk-update-icon-cache`` model (GTK 3.24.38 ``gtk/updateiconcache.c`` with Debian's
``060_ignore-random-icons.patch``): ``main``, ``is_cache_up_to_date``, ``scan_directory``,
``load_icon_data``, ``build_cache``, ``write_csource``.

``gtk-update-icon-cache [OPTION...] ICONPATH`` writes ``ICONPATH/icon-theme.cache``
byte-identical to the real program's (the format and the writer are in ``iconcache_write``):
every ``.png``/``.svg``/``.xpm``/``.icon`` file below the theme's subdirectories (names sorted
with ``strcmp``, files in the theme's top directory ignored), through a temporary
``.icon-theme.cache`` (mode 0644 under the umask) renamed over the cache, then the theme
directory's times set as ``g_utime`` does (its atime, the cache's mtime, both in whole
seconds). Options: ``--force``/``-f``, ``--ignore-theme-index``/``-t``, ``--index-only``/``-i``,
``--include-image-data`` (deferred only when a ``.png``/``.xpm`` would be decoded),
``--source``/``-c NAME``, ``--quiet``/``-q``, ``--validate``/``-v``.

Deferred, with the reason: image data (gdk-pixbuf decodes the images), GOption's help and
error paths, ``.icon`` key files outside the plain syntax modelled here, symlink loops, and
messages in a locale gettext may translate.
"""

from __future__ import annotations

import os
import re
import stat as _stat

from nuwa.script.commands._ghash import GHashTable
from nuwa.script.commands.caches import iconcache_write as fmt
from nuwa.script.commands.glib.compile import check_printable, printerr_text
from nuwa.script.context import Defer, Invocation

PROG = "gtk-update-icon-cache"
CACHE_NAME = "icon-theme.cache"
_FLAGS = {"force": "force", "ignore-theme-index": "ignore", "index-only": "index-only",
          "quiet": "quiet", "validate": "validate"}
_SHORT = {"f": "force", "t": "ignore", "i": "index-only", "q": "quiet", "v": "validate"}


def _parse_args(inv: Invocation) -> tuple[dict, list[str]]:
    """GOption's parse of the entries ``gtk-update-icon-cache`` declares (no abbreviations)."""
    opts = {"force": False, "ignore": False, "index-only": True, "quiet": False, "validate": False, "source": "-"}
    rest, args, i = [], inv.argv[1:], 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            raise Defer(f"{PROG}: GOption's handling of '--' is not modelled")
        if a.startswith("--"):
            name, eq, val = a[2:].partition("=")
            if name in _FLAGS and not eq:
                opts[_FLAGS[name]] = True
            elif name == "include-image-data" and not eq:
                opts["index-only"] = False  # G_OPTION_FLAG_REVERSE on index_only
            elif name == "source":
                if not eq:
                    if i >= len(args):
                        raise Defer(f"{PROG}: GOption's error for {a} without its argument is not modelled")
                    val = args[i]
                    i += 1
                opts["source"] = val
            else:
                raise Defer(f"{PROG}: option {a} (help or a GOption error) is not modelled")
            continue
        if a.startswith("-") and a != "-":
            if a == "-c":
                if i >= len(args):
                    raise Defer(f"{PROG}: GOption's error for -c without its argument is not modelled")
                opts["source"] = args[i]
                i += 1
                continue
            for c in a[1:]:
                if c not in _SHORT:
                    raise Defer(f"{PROG}: option {a} (help, a grouped -c or a GOption error) is not modelled")
                opts[_SHORT[c]] = True
            continue
        rest.append(a)
    return opts, rest


def build_path(*elements: str) -> str:
    """``g_build_path ("/", ...)`` (and ``g_build_filename``): empty elements skipped, the
    separators between elements collapsed to one, the first element's leading and the last
    one's trailing separators kept; an element of separators alone is returned as it is."""
    result, is_first, have_leading, single, last_trailing = "", True, False, None, ""
    for e in elements:
        if not e:
            continue
        rest = e.lstrip("/")
        core = rest.rstrip("/")
        last_trailing = e[len(e.rstrip("/")):]
        if not have_leading:
            single = e if not core else None
            result += e[:len(e) - len(rest)]
            have_leading = True
        else:
            single = None
        if not core:
            continue
        if not is_first:
            result += "/"
        result += core
        is_first = False
    return single if single is not None else result + last_trailing


def canonicalize(path: str) -> str:
    """``canonicalize_filename``: duplicate slashes, ``.`` and ``..`` folded lexically."""
    comps: list[str] = []
    for c in path.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if comps:
                comps.pop()
            continue
        comps.append(c)
    return ("/" if path.startswith("/") else "") + "/".join(comps) if comps or path.startswith("/") else ""


def _follow_links(inv: Invocation, path: str) -> str | None:
    """``follow_links``: the path a chain of symbolic links leads to (None if not a link)."""
    path2 = path
    for _ in range(64):
        try:
            if not _stat.S_ISLNK(inv.fs.lstat(inv.path(path2)).st_mode):
                break
            target = inv.fs.readlink(inv.path(path2))
        except OSError:
            break
        path2 = target if target.startswith("/") else build_path(os.path.dirname(path2) or ".", target)
    else:
        raise Defer(f"{PROG}: {path} is a symbolic link loop (follow_links never returns)")
    return None if path2 == path else path2


class _Scan:
    """``scan_directory`` over the image's files, with its three hash tables."""

    def __init__(self, inv: Invocation, index_only: bool):
        self.inv = inv
        self.index_only = index_only
        self.files = GHashTable()
        self.directories: list[bytes] = []
        self.icon_data: dict[str, fmt.IconData | None] = {}
        self.stack: list[tuple[int, int]] = []

    def _stat(self, path: str):
        try:
            return self.inv.fs.stat(self.inv.path(path))
        except OSError:
            return None

    def scan(self, base: str, subdir: str | None) -> None:
        """One directory; subdirectories first where they sort, this one's images moved last."""
        inv = self.inv
        dir_path = build_path(base, subdir or "")
        if not dir_path:
            return  # g_dir_open ("") fails (inv.path would name the working directory)
        try:
            st = inv.fs.stat(inv.path(dir_path))
            names = inv.fs.readdir(inv.path(dir_path))
        except OSError:
            return  # g_dir_open failed: the directory adds nothing
        if (st.st_dev, st.st_ino) in self.stack:
            raise Defer(f"{PROG}: {dir_path} loops through a symbolic link (the real walk recurses until "
                        "its paths are too long)")
        self.stack.append((st.st_dev, st.st_ino))
        dir_hash = GHashTable()
        dir_added = False
        dir_index = 0xFFFF
        for name in sorted(names, key=os.fsencode):
            path = build_path(dir_path, name)
            st = self._stat(path)
            if st is not None and _stat.S_ISDIR(st.st_mode):
                self.scan(base, build_path(subdir, name) if subdir else name)
                continue
            if subdir is None or st is None or not _stat.S_ISREG(st.st_mode):
                continue  # images in the top directory are ignored
            flags = 0
            if name.endswith(".png"):
                flags = fmt.HAS_SUFFIX_PNG
            elif name.endswith(".svg"):
                flags = fmt.HAS_SUFFIX_SVG
            elif name.endswith(".xpm"):
                flags = fmt.HAS_SUFFIX_XPM
            elif name.endswith(".icon"):
                flags = fmt.HAS_ICON_FILE
            if not flags:
                continue
            basename = os.fsencode(name).rpartition(b".")[0]
            image = dir_hash.get(basename)
            if image is None:
                if not dir_added:
                    dir_added = True
                    dir_index = len(self.directories)
                    self.directories.append(os.fsencode(subdir))
                image = fmt.Image(dir_index)
                dir_hash.insert(basename, image)
            image.flags |= flags
            if not self.index_only and name.endswith((".png", ".xpm")):
                raise Defer(f"{PROG}: image data for {path} (gdk-pixbuf decodes the image)")
            if name.endswith(".icon"):
                self._icon_data(image, path)
        self.stack.pop()
        for basename, image in dir_hash.items():  # foreach_remove_func
            if image.flags == fmt.HAS_ICON_FILE:
                continue  # just a .icon file
            self.files.insert(basename, [image] + (self.files.get(basename) or []))

    def _icon_data(self, image: fmt.Image, path: str) -> None:
        """``maybe_cache_icon_data``: one IconData per file, shared by the links to it."""
        idata = self.icon_data.get(path)
        path2 = _follow_links(self.inv, path)
        if path2 is not None:
            path2 = canonicalize(path2)
            idata2 = self.icon_data.get(path2)
            if idata is not None and idata2 is not None and idata is not idata2:
                raise Defer(f"{PROG}: different idatas for {path} and {path2} (the real program aborts)")
            if idata is not None and idata2 is None:
                self.icon_data[path2] = idata
            if idata is None and idata2 is not None:
                self.icon_data[path] = idata = idata2
        if idata is None:
            try:
                data = self.inv.fs.read_bytes(self.inv.path(path))
            except OSError:
                data = None  # g_key_file_load_from_file fails
            idata = None if data is None else load_icon_data(data, path)
            self.icon_data[path] = idata
            if path2 is not None:
                self.icon_data[path2] = idata
        image.icon_data = idata


_KEY = re.compile(r"[A-Za-z0-9-]+(\[[A-Za-z0-9_.@-]+\])?\Z")
_GROUP = re.compile(r"\[([^\[\]\x00-\x1f]+)\][ \t]*\Z")


def _keyfile(data: bytes, path: str) -> dict[str, dict[str, str]] | None:
    """The groups of a ``.icon`` key file (plain ``GKeyFile`` syntax), None where GKeyFile fails."""
    if b"\\" in data or b"\r" in data or b"\0" in data:
        raise Defer(f"{PROG}: {path}: escapes, CR or NUL in a key file are not modelled")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Defer(f"{PROG}: {path} is not UTF-8 (GKeyFile's checks are not modelled)") from None
    groups: dict[str, dict[str, str]] = {}
    current = None
    for line in text.split("\n"):
        line = line.lstrip(" \t\n\v\f\r")
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            m = _GROUP.match(line)
            if not m or m.group(1) in groups:
                raise Defer(f"{PROG}: {path}: group line {line!r} is not modelled")
            current = groups[m.group(1)] = {}
            continue
        key, eq, value = line.partition("=")
        if not eq or not key:
            return None  # not a key-value pair, group or comment: the load fails
        if current is None:
            return None  # "Key file does not start with a group"
        key = key.rstrip(" \t\n\v\f\r")
        if not _KEY.match(key) or key in current or key == "Encoding":
            raise Defer(f"{PROG}: {path}: key {key!r} is not modelled")
        current[key] = value.lstrip(" \t\n\v\f\r")
    return groups


def _strtol(s: str) -> tuple[int, int]:
    """C ``strtol (s, &end, 10)``: (value clamped to a long, index where parsing stopped)."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?[0-9]+)", s)
    if not m:
        return 0, 0
    v = int(m.group(1))
    return max(-(1 << 63), min(v, (1 << 63) - 1)), m.end()


def _integer_list(value: str) -> list[int] | None:
    """``g_key_file_get_integer_list`` with ``,`` as separator (None on any bad item)."""
    items = value.split(",")
    if items and items[-1] == "":
        items.pop()  # a trailing separator ends the list
    out = []
    for item in items:
        v, end = _strtol(item)
        if item == "" or (end < len(item) and item[end] not in " \t\n\v\f\r"):
            return None
        if not -(1 << 31) <= v < 1 << 31:
            return None
        out.append(v)
    return out


def load_icon_data(data: bytes, path: str) -> fmt.IconData | None:
    """``load_icon_data``: the embedded text rectangle, attach points and display names."""
    groups = _keyfile(data, path)
    if groups is None:
        return None
    if "Icon Data" not in groups:
        raise Defer(f"{PROG}: {path} has no [Icon Data] group (the real program reads an unset key count)")
    g = groups["Icon Data"]
    out = fmt.IconData()
    rect = _integer_list(g["EmbeddedTextRectangle"]) if "EmbeddedTextRectangle" in g else None
    if rect is not None and len(rect) == 4:
        out.embedded_rect = tuple(rect)
    if "AttachPoints" in g:
        for item in (g["AttachPoints"].split("|") if g["AttachPoints"] else []):
            x, comma, y = item.partition(",")
            if not comma:
                raise Defer(f"{PROG}: {path}: an attach point without a comma is left uninitialised")
            out.attach_points.append((_strtol(x)[0] & 0xFFFFFFFF, _strtol(y)[0] & 0xFFFFFFFF))
    for key in g:
        if not key.startswith("DisplayName"):
            continue
        if key == "DisplayName":
            lang = "C"
        elif key.startswith("DisplayName[") and key.endswith("]"):
            lang = key[len("DisplayName["):-1]
        else:
            raise Defer(f"{PROG}: {path}: key {key!r} (a locale lookup) is not modelled")
        out.display_names.append((lang.encode(), g[key].encode()))
    return out


def _mtime_s(st) -> int:
    return st.st_mtime_ns // 1_000_000_000


def is_cache_up_to_date(inv: Invocation, path: str) -> bool:
    """``is_cache_up_to_date``: the cache exists and nothing ``ftw`` reaches is newer (seconds)."""
    try:
        cache = inv.fs.stat(inv.path(build_path(path, CACHE_NAME)))
    except OSError:
        return False
    if not path:
        return True  # ftw ("") fails at once: nothing was found newer
    limit = _mtime_s(cache)
    seen: set[tuple[int, int]] = set()

    def newer(p: str) -> bool:
        try:
            st = inv.fs.stat(inv.path(p))
        except OSError:
            try:
                st = inv.fs.lstat(inv.path(p))  # a dangling link is reported (FTW_SLN)
            except OSError:
                return False
            if not _stat.S_ISLNK(st.st_mode):
                return False
        if _mtime_s(st) > limit:
            return True
        if not _stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
            return False
        seen.add((st.st_dev, st.st_ino))
        try:
            names = inv.fs.readdir(inv.path(p))
        except OSError:
            return False
        return any(newer(build_path(p, n)) for n in names)

    return not newer(path)


def _err(inv: Invocation, text: str) -> None:
    """``g_printerr`` through the program's handler: ``prgname: `` and the locale conversion."""
    check_printable(inv, PROG)
    if any("\udc80" <= c <= "\udcff" for c in text):
        raise Defer(f"{PROG}: a message naming a path that is not UTF-8 (g_convert drops it)")
    inv.err(printerr_text(inv, f"{inv.name}: {text}"))


def _validate_file(inv: Invocation, path: str) -> bool:
    try:
        data = inv.fs.read_bytes(inv.path(path))
    except OSError:
        return False
    try:
        return fmt.validate(data)
    except NotImplementedError as e:
        raise Defer(f"{PROG}: validating {path}: {e}") from None


def build_cache(inv: Invocation, path: str, opts: dict) -> int | None:
    """``build_cache``: scan, write the temporary file, validate, rename, set the times.

    Returns an exit status where the real program exits, None when it goes on."""
    fs = inv.fs
    tmp = inv.path(build_path(path, "." + CACHE_NAME))
    cache = inv.path(build_path(path, CACHE_NAME))
    scan = _Scan(inv, opts["index-only"])
    scan.scan(path, None)  # before anything is written: a deferral leaves the image as it was
    data = fmt.build_cache(scan.files.items(), scan.directories) if len(scan.files) else b""
    valid = not data or fmt.validate(data)
    if not opts["quiet"] or not valid:
        check_printable(inv, PROG)  # a message is due: decided before anything is written
    for retry in (0, 1):
        try:
            h = fs.open_handle(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_TRUNC, 0o644 & ~inv.umask)
            break
        except OSError as e:
            if retry == 1:
                _err(inv, f"Failed to open file {build_path(path, '.' + CACHE_NAME)} : {os.strerror(e.errno)}\n")
                return 1
            check_printable(inv, PROG)  # the second failure prints
            _remove(inv, tmp)
    if not data:  # no icons: the temporary file and any old cache are removed
        h.close()
        for p in (tmp, cache):
            try:
                fs.unlink(p)
            except OSError:
                pass
        return 0
    try:
        h.pwrite(0, data)
    finally:
        h.close()
    if not valid:
        _err(inv, "The generated cache was invalid.\n")
        return 1  # the temporary file is left (its unlink is commented out upstream)
    try:
        fs.rename(tmp, cache)
    except OSError as e:
        _err(inv, f"Could not rename {build_path(path, '.' + CACHE_NAME)} to {build_path(path, CACHE_NAME)}: "
                  f"{os.strerror(e.errno)}\n")
        fs.unlink(tmp)
        return 1
    try:
        dir_st, cache_st = fs.stat(inv.path(path)), fs.stat(cache)
    except OSError:
        return 1
    # g_utime takes whole seconds: the directory's atime kept, its mtime the cache's
    fs.utime(inv.path(path), (dir_st.st_atime_ns // 10**9) * 10**9, _mtime_s(cache_st) * 10**9)
    if not opts["quiet"]:
        _err(inv, "Cache file created successfully.\n")
    return None


def _remove(inv: Invocation, p: str) -> None:
    """``g_remove``: ``unlink``, or ``rmdir`` where unlink fails; errors ignored."""
    try:
        inv.fs.unlink(p)
    except OSError:
        try:
            inv.fs.rmdir(p)
        except OSError:
            pass


def write_csource(inv: Invocation, path: str, var_name: str) -> int:
    """``write_csource``: the cache as a C array named ``var_name`` on stdout."""
    try:
        data = inv.fs.read_bytes(inv.path(build_path(path, CACHE_NAME)))
    except OSError:
        return 1
    out = ["#ifdef __SUNPRO_C\n", f"#pragma align 4 ({var_name})\n", "#endif\n", "#ifdef __GNUC__\n",
           f"static const guint8 {var_name}[] __attribute__ ((__aligned__ (4))) = \n", "#else\n",
           f"static const guint8 {var_name}[] = \n", "#endif\n", "{\n"]
    for i, b in enumerate(data[:-1]):
        if i % 12 == 0:
            out.append("  ")
        out.append(f"0x{b:02x}, ")
        if i % 12 == 11:
            out.append("\n")
    out.append(f"0x{data[-1]:02x}\n}};\n")
    inv.out("".join(out))
    return 0


def gtk_update_icon_cache(inv: Invocation) -> int:
    """The ``gtk-update-icon-cache`` model (GTK 3.24.38 ``main``)."""
    if len(inv.argv) < 2:
        return 0
    opts, rest = _parse_args(inv)
    if not rest:
        raise Defer(f"{PROG}: no ICONPATH (the real program builds paths from NULL)")
    path = rest[0]
    if opts["validate"]:
        file = build_path(path, CACHE_NAME)
        try:
            regular = _stat.S_ISREG(inv.fs.stat(inv.path(file)).st_mode)
        except OSError:
            regular = False
        if not regular:
            if not opts["quiet"]:
                _err(inv, f"File not found: {file}\n")
            return 1
        if not _validate_file(inv, file):
            if not opts["quiet"]:
                _err(inv, f"Not a valid icon cache: {file}\n")
            return 1
        return 0
    if not opts["ignore"]:
        try:
            has_index = _stat.S_ISREG(inv.fs.stat(inv.path(build_path(path, "index.theme"))).st_mode)
        except OSError:
            has_index = False
        if not has_index:
            _err(inv, "No theme index file.\n")
            return 1
    if not opts["force"] and is_cache_up_to_date(inv, path):
        return 0
    if not opts["quiet"]:
        check_printable(inv, PROG)  # decided before anything is written
    status = build_cache(inv, path, opts)
    if status is not None:
        return status
    if opts["source"] != "-":
        return write_csource(inv, path, opts["source"])
    return 0
