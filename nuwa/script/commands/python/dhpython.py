"""dh-python's ``py3compile`` and ``py3clean`` (bookworm's dh-python 5.20230130 /
python3 3.11.2-1, ``/usr/bin/py3compile``, ``/usr/bin/py3clean`` and ``debpython/``).

py3compile picks the ``.py`` files (a package's public modules from ``dpkg -L``, a package's
files under given directories, or every ``.py`` under given paths), skips those whose
``__pycache__`` file already has the current timestamp header (unless ``-f``), creates the
``__pycache__`` directories, and feeds the names to ``python3.X [-O] -m py_compile -`` --
modelled by :mod:`pycompile` with a host interpreter of the same bytecode format. py3clean
removes the ``__pycache__`` files (and classic ``.pyc``/``.pyo``) of a package's or a
directory's ``.py`` files and then-empty ``__pycache__`` directories.

Exclusion files under ``/usr/share/python3/bcep`` (``TYPE|VRANGE|DIR[|REGEXPR]`` lines: ``dir``,
``file`` and ``re`` entries, for the installed versions in their range) are applied as
``get_exclude_patterns``/``filter_files`` do. Deferred: a bcep line with a bad pattern (its
warning), verbose/debug output, ``py3clean -V`` (it asks each interpreter for its tag), Python 3.1.
"""

from __future__ import annotations

import configparser
import fnmatch
import importlib.util
import os
import posixpath
import re
import struct

from nuwa.script.commands.python import bytecode, pycompile
from nuwa.script.context import Defer, Invocation

PUBLIC_DIR_RE = re.compile(r".*?/usr/lib/python(\d(?:.\d+)?)/(site|dist)-packages")
RANGE_RE = re.compile(r"(-)?(\d\.\d+)(?:(-)(\d\.\d+)?)?")


def _versions_config(inv: Invocation) -> tuple[tuple[int, int], list[tuple[int, int]]]:
    """debpython.version's DEFAULT and SUPPORTED (environment first, then debian_defaults)."""
    sup, dflt = inv.env.get("DEBPYTHON3_SUPPORTED"), inv.env.get("DEBPYTHON3_DEFAULT")
    if not sup or not dflt:
        cp = configparser.ConfigParser()
        try:
            cp.read_string(inv.fs.read_bytes("/usr/share/python3/debian_defaults").decode("utf-8"))
            dflt = dflt or cp.get("DEFAULT", "default-version")[6:]
            sup = sup or cp.get("DEFAULT", "supported-versions").replace("python", "")
        except (OSError, ValueError, configparser.Error):
            raise Defer("py3compile: /usr/share/python3/debian_defaults cannot be read") from None
    try:
        default = tuple(int(i) for i in dflt.split("."))
        supported = [tuple(int(j) for j in i.strip().split(".")) for i in sup.split(",")]
    except ValueError:
        raise Defer("py3compile: unusable DEFAULT/SUPPORTED Python versions") from None
    return default, supported


def parse_vrange(value: str):
    """``debpython.version.parse_vrange``."""
    if value in ("", "-"):
        return None, None
    m = RANGE_RE.match(value)
    if not m:
        raise Defer(f"py3compile: version range is invalid: {value}")
    g = m.groups()
    if list(g).count(None) == 3:
        v = tuple(int(i) for i in g[1].split("."))
        return v, v
    minv = maxv = None
    if g[0]:
        maxv = g[1]
    else:
        minv, maxv = g[1], g[3]
    minv = tuple(int(i) for i in minv.split(".")) if minv else None
    maxv = tuple(int(i) for i in maxv.split(".")) if maxv else None
    if maxv and minv and minv > maxv:
        raise Defer(f"py3compile: version range is invalid: {value}")
    return minv, maxv


def requested_versions(inv: Invocation, supported, vrange) -> set:
    """``get_requested_versions(vrange, available=True)``."""
    if not vrange or list(vrange) == [None, None]:
        versions = set(supported)
    else:
        minv = (0, 0) if vrange[0] is None else vrange[0]
        maxv = (99, 99) if vrange[1] is None else vrange[1]
        if minv == maxv:
            versions = {minv} if minv in supported else set()
        else:
            versions = {v for v in supported if minv <= v < maxv}
    return {v for v in versions if inv.fs.exists("/usr/bin/python%d.%d" % v)}


def package_files(inv: Invocation, package: str) -> list[str]:
    """``debpython.files.from_package``: the ``.py`` lines of ``dpkg -L PACKAGE``."""
    if inv.run is None:
        raise Defer("py3compile: dpkg -L cannot be run here")
    status, out, _err = inv.run(["/usr/bin/dpkg", "-L", package], b"")
    if status != 0:
        raise Defer(f"py3compile: dpkg -L {package} failed (the real program dies with a traceback)")
    return [ln for ln in out.decode("utf-8").splitlines() if ln.endswith(".py")]


def directory_files(inv: Invocation, item: str) -> list[str]:
    """``debpython.files.from_directory``: a ``.py`` file itself, or every ``.py`` below."""
    fs = inv.fs
    ap = inv.path(item)
    try:
        if fs.stat(ap).is_reg and item.endswith(".py"):
            return [item]
    except OSError:
        pass
    out = []
    for root, _dirs, files in fs.walk(posixpath.normpath(ap)):
        out.extend(posixpath.join(root, f) for f in files if f.endswith(".py"))
    return out


def log_line(inv: Invocation, script: str, needle: str) -> int:
    """The line of ``script`` (in the image) holding ``needle``: logging prints it."""
    try:
        lines = inv.fs.read_bytes(script).decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        raise Defer(f"{script}: cannot be read to quote its messages") from None
    for n, ln in enumerate(lines, 1):
        if needle in ln:
            return n
    raise Defer(f"{script}: not the py3compile/py3clean this model knows")


def _options(inv: Invocation, short_arg: str, short_flag: str, longs: dict) -> tuple[dict, list[str]]:
    """optparse, for the options these two programs declare (interspersed arguments)."""
    opts: dict = {}
    args: list[str] = []
    argv = inv.argv[1:]
    i = 0
    while i < len(argv):
        a = argv[i]
        i += 1
        if a == "--":
            args.extend(argv[i:])
            break
        if a.startswith("--") and len(a) > 2:
            name, eq, val = a[2:].partition("=")
            full = [n for n in longs if n.startswith(name)]
            if name in longs:
                full = [name]
            if len(full) != 1:
                raise Defer(f"{inv.name}: option {a} is not modelled")
            key, takes = longs[full[0]]
            if takes and not eq:
                if i >= len(argv):
                    raise Defer(f"{inv.name}: option {a} needs an argument")
                val = argv[i]
                i += 1
            opts.setdefault(key, []).append(val if takes else True)
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                ch = a[j]
                j += 1
                if ch in short_arg:
                    val = a[j:]
                    if not val:
                        if i >= len(argv):
                            raise Defer(f"{inv.name}: option -{ch} needs an argument")
                        val = argv[i]
                        i += 1
                    opts.setdefault(ch, []).append(val)
                    break
                if ch not in short_flag:
                    raise Defer(f"{inv.name}: option -{ch} is not modelled")
                opts.setdefault(ch, []).append(True)
        else:
            args.append(a)
    return opts, args


def py3compile(inv: Invocation) -> int:
    """``py3compile [-f] [-O] [-q] [-V RANGE] [-X REGEXPR]... [-p PKG] [DIR_OR_FILE...]``."""
    opts, args = _options(inv, "pVX", "vqfO", {
        "verbose": ("v", False), "quiet": ("q", False), "force": ("f", False),
        "package": ("p", True), "exclude": ("X", True)})
    if "v" in opts or inv.env.get("PYCOMPILE_DEBUG") == "1":
        raise Defer("py3compile: verbose output is not modelled")
    force, optimize = "f" in opts, "O" in opts
    package = opts.get("p", [None])[-1]
    regexprs = []
    for r in opts.get("X", []):
        try:
            regexprs.append(re.compile(r))
        except re.error:
            raise Defer("py3compile: usage error (invalid regular expression) is not modelled") from None
    if regexprs and not args:
        raise Defer("py3compile: usage error (--exclude without directories) is not modelled")
    default, supported = _versions_config(inv)
    vrange = parse_vrange(opts["V"][-1]) if "V" in opts else None
    if vrange and vrange[0] == vrange[1] and vrange != (None, None) and inv.fs.exists("/usr/bin/python%d.%d" % vrange[0]):
        versions = {vrange[0]}
    else:
        versions = requested_versions(inv, supported, vrange)
    if not versions:
        ln = log_line(inv, "/usr/bin/py3compile", "log.error('Requested versions are not installed')")
        inv.err(f"E: py3compile:{ln}: Requested versions are not installed\n")
        return 3
    jobs: list[tuple[str, set]] = []  # (file, versions) in the order py3compile sends them
    if package and args:
        newer = sorted(v for v in versions if v >= default)
        older = sorted((v for v in versions if v < default), reverse=True)
        cversions = (newer + older)[:1]
        pkg_files = package_files(inv, package)
        for item in args:
            if not inv.fs.exists(inv.path(item)):
                ln = log_line(inv, "/usr/bin/py3compile", "log.warning('No such file or directory: %s'")
                inv.err(f"W: py3compile:{ln}: No such file or directory: {item}\n")
                continue
            jobs += _filtered(inv, [f for f in pkg_files if f.startswith(item)],
                              exclude_patterns(inv, supported, item, regexprs, cversions), cversions)
    elif package:
        vstr = {"%d.%d" % v for v in versions}
        shared = {str(v[0]) for v in versions}
        files = [f for f in package_files(inv, package)
                 if (m := PUBLIC_DIR_RE.match(f)) and (m.group(1) in shared or m.group(1) in vstr)]
        jobs += _filtered(inv, files, exclude_patterns(inv, supported), versions)
    elif args:
        for item in args:
            jobs += _filtered(inv, directory_files(inv, item), exclude_patterns(inv, supported, item, regexprs, versions),
                              versions)
    else:
        raise Defer("py3compile: usage output is not modelled")
    return _compile(inv, jobs, force, optimize)


BCEP = "/usr/share/python3/bcep"


def bcep_patterns(inv: Invocation, supported) -> list[tuple]:
    """``get_exclude_patterns_from_dir``: (type, versions, directory, compiled pattern or None)
    of every line of every file in ``/usr/share/python3/bcep`` (names in listdir order, which
    does not change the result: only the set of exclusions matters)."""
    fs = inv.fs
    try:
        if not fs.stat(BCEP).is_dir:
            return []
        names = fs.readdir(BCEP)
    except OSError:
        return []
    out = []
    for fn in names:
        if fn.startswith("."):
            continue
        try:
            text = fs.read_bytes(f"{BCEP}/{fn}").decode("utf-8")
        except (OSError, UnicodeDecodeError):
            raise Defer(f"py3compile: {BCEP}/{fn} cannot be read as UTF-8 (its traceback is not modelled)") from None
        for line in text.splitlines(keepends=True):
            if line.startswith("#"):
                continue
            line = line.rstrip("\n")
            parts = line.split("|", 3)
            if len(parts) < 3:
                raise Defer(f"py3compile: a bcep line without three fields in {fn} (its traceback is not modelled)")
            if len(parts) == 3:
                parts.append(".*")
            type_, vrange, dname, pattern = parts
            if type_ != "file":
                dname = dname.rstrip("/") + "/"
            versions = requested_versions(inv, supported, parse_vrange(vrange))
            if not versions:
                continue  # for Python versions not installed
            compiled = None
            if type_ == "re" or pattern:
                try:
                    compiled = re.compile(pattern)
                except re.error:
                    raise Defer(f"py3compile: bcep file {fn} has an invalid pattern (its warning is not "
                                "modelled)") from None
            out.append((type_, set(versions), dname, compiled))
    return out


def exclude_patterns(inv: Invocation, supported, directory: str = "/", regexprs=(), versions=None) -> list[tuple]:
    """``get_exclude_patterns``: the ``-X`` patterns for ``directory``, then the bcep entries
    whose directory fits it and whose versions meet ``versions``."""
    directory = directory.rstrip("/") + "/"
    vset = set(versions) if versions is not None else None
    out = []
    if regexprs:
        if vset is None:
            vset = set(supported)
        out = [("re", vset, directory, r) for r in regexprs]
    for type_, vers, dname, pattern in bcep_patterns(inv, supported):
        if not dname.startswith(directory[:len(dname)]):
            continue
        if vset and not vset & vers:
            continue
        out.append((type_, vers, dname, pattern))
    return out


def _filtered(inv: Invocation, files: list[str], patterns: list[tuple], versions) -> list[tuple[str, set]]:
    """``filter_files``: each file with the versions no pattern excludes (its own public
    directory's version when it has one)."""
    out = []
    for fpath in files:
        valid = set(versions)
        for type_, vers, dname, pattern in patterns:
            if not fpath.startswith(dname):
                continue
            rf = fpath[len(dname):]
            if type_ == "dir":
                valid -= vers
            elif type_ == "file" and fpath == dname:
                valid -= vers
            elif type_ == "re" and (pattern.match(fpath) or pattern.match(rf)):
                valid -= vers
            if not valid:
                break
        if valid:
            m = PUBLIC_DIR_RE.match(fpath)
            if m and len(m.group(1)) != 1:
                out.append((fpath, {tuple(int(i) for i in m.group(1).split(".", 2))[:2]}))
            else:
                out.append((fpath, valid))
    return out


def _compile(inv: Invocation, jobs: list[tuple[str, set]], force: bool, optimize: bool) -> int:
    """``compile()``: the up-to-date check, ``__pycache__`` creation, one py_compile per version.

    Planned first and compiled (:class:`pycompile.Precompiled`) before anything is written,
    so a source that does not compile defers the command with nothing half done.
    """
    fs = inv.fs
    planned: list[tuple[str, str, str]] = []  # (version, file, its __pycache__)
    for fn, vers in jobs:
        for v in sorted(vers):
            version = "%d.%d" % v
            if v <= (3, 1):
                raise Defer("py3compile: Python 3.1's .pyc layout is not modelled")
            bytecode.require_same_magic(fs, version)
            tag = "cpython-" + version.replace(".", "")
            d, name = posixpath.split(fn)
            stem = name[:-3] if name.endswith(".py") else name
            cfn = posixpath.join(d, "__pycache__", f"{stem}.{tag}.py{'o' if optimize else 'c'}")
            if not force:
                try:
                    # (the host's magic: require_same_magic above made it the image's)
                    expect = importlib.util.MAGIC_NUMBER + struct.pack(
                        "<LL", 0, int(fs.stat(inv.path(fn)).st_mtime) & 0xFFFFFFFF)
                    if fs.read_bytes(inv.path(cfn))[:12] == expect:
                        continue
                except OSError:
                    pass
            planned.append((version, fn, posixpath.dirname(cfn)))
    level = 1 if optimize else 0
    pre = {v: pycompile.Precompiled(inv, [fn for ver, fn, _ in planned if ver == v], level)
           for v in dict.fromkeys(ver for ver, _, _ in planned)}
    queues: dict[str, list[str]] = {}
    skip_dirs: set[str] = set()
    for version, fn, pdir in planned:
        queues.setdefault(version, [])
        if pdir not in skip_dirs and not fs.exists(inv.path(pdir)):
            try:
                fs.mkdir(inv.path(pdir), 0o777 & ~inv.umask)
            except OSError as e:
                ln = log_line(inv, "/usr/bin/py3compile", 'log.error("cannot create directory %s: %r"')
                inv.err(f"E: py3compile:{ln}: cannot create directory {pdir}: "
                        f"{type(e).__name__}({e.errno}, {os.strerror(e.errno)!r})\n")
                skip_dirs.add(pdir)
                continue
        queues[version].append(fn)
    rv = 0
    for version, names in queues.items():
        # each version's worker reads all names, then compiles them in order
        sub = Invocation(argv=[f"/usr/bin/python{version}"] + (["-O"] if optimize else []) + ["-m", "py_compile", "-"],
                         fs=fs, cwd=inv.cwd, env=inv.env, umask=inv.umask)
        sub.stdin = "".join(n + "\n" for n in names).encode("utf-8")
        st = pycompile.py_compile_main(sub, version, level, ["-"], module_mode=True, precompiled=pre[version])
        inv.err(bytes(sub.stderr))
        if st:
            rv = st
    return rv


def py3clean(inv: Invocation) -> int:
    """``py3clean [-q] [-p PACKAGE] [DIR_OR_FILE...]``: remove compiled files of ``.py`` files."""
    opts, args = _options(inv, "pV", "vq", {"verbose": ("v", False), "quiet": ("q", False), "package": ("p", True)})
    if "v" in opts or inv.env.get("PYCLEAN_DEBUG") == "1":
        raise Defer("py3clean: verbose output is not modelled")
    if "V" in opts:
        raise Defer("py3clean -V: asking each interpreter for its magic tag is not modelled")
    package = opts.get("p", [None])[-1]
    if not package and not args:
        raise Defer("py3clean: usage output is not modelled")
    files: list[str] = []
    if args:
        for item in args:
            files += directory_files(inv, item)
        if package:
            pkg = set(package_files(inv, package))
            files = [f for f in dict.fromkeys(files) if f in pkg]
    else:
        files = package_files(inv, package)
    for pyfile in dict.fromkeys(files):
        for fname in _to_remove(inv, pyfile):
            try:
                inv.fs.unlink(inv.path(fname))
            except OSError:
                ln = log_line(inv, "/usr/bin/py3clean", "log.error('cannot remove %s', filename)")
                inv.err(f"E: py3clean:{ln}: cannot remove {fname}\n")
                continue
            d = posixpath.dirname(fname)
            if d.endswith("__pycache__"):
                try:
                    inv.fs.rmdir(inv.path(d))
                except OSError:
                    pass
    return 0


def _to_remove(inv: Invocation, pyfile: str) -> list[str]:
    """``find_files_to_remove`` (magic_tag None): ``__pycache__/NAME.*``, ``FILEc``/``FILEo``."""
    directory = posixpath.join(posixpath.dirname(pyfile), "__pycache__")
    fname = posixpath.splitext(posixpath.basename(pyfile))[0]
    out = []
    try:
        names = inv.fs.readdir(inv.path(directory))
    except OSError:
        names = []
    pat = f"{fname}.*"
    out += [posixpath.join(directory, n) for n in names
            if (not n.startswith(".") or pat.startswith(".")) and fnmatch.fnmatchcase(n, pat)]
    for f in (pyfile + "c", pyfile + "o"):
        if inv.fs.exists(inv.path(f)):
            out.append(f)
    if "." in fname:
        sane = posixpath.join(posixpath.dirname(pyfile), fname.split(".", 1)[0])
        out += [posixpath.join(directory, f) for f in _to_remove(inv, sane)]
    return out
