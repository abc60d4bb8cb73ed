"""``mandb -c`` / ``mandb -p`` of man-db 2.11.2 (Debian 12), quiet, against the image.

Mirrors ``src/mandb.c`` (``main``, ``process_manpath``, ``mandb``, ``reorganize``),
``src/check_mandirs.c`` (``testmandirs``, ``add_dir_entries``, ``test_manfile``,
``mkcatdirs``, ``fix_permissions_tree``, ``chown_if_possible``), ``src/ult_src.c``,
``lib/filenames.c``, ``lib/compression.c``, ``src/straycats.c`` (only to find that there is
nothing stray) and ``src/manp.c`` (the configuration file, the catpaths).

What the file ends up holding does not depend on the order mandb stores in: after filling a
temporary database, mandb rewrites it (``reorganize``) as a new gdbm file with every key
inserted in sorted order, so the model computes the records, then writes that file with
:mod:`nuwa.formats.gdbm`. Competing records are checked for order independence
(``store.py``). Anything mandb would print under ``-q`` (its unconditional errors), and every
form and state not reproduced, defers the whole invocation with the reason.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat as _stat

from nuwa.formats.gdbm import Gdbm, GdbmError, GdbmUnsupported
from nuwa.script.commands._common import UserDB
from nuwa.script.commands.mandb.pages import PageReader, b as _b, comp_info, filename_info
from nuwa.script.commands.mandb.store import (
    SO_MAN, STRAY_CAT, ULT_MAN, VER_ID, VER_KEY, WHATIS_CAT, WHATIS_MAN, Index, Mandata,
    OrderDependent, StoreFailed, name_to_key, parse_descriptions, split_content)
from nuwa.script.context import Defer, Invocation

CONFIG_FILE = "/etc/manpath.config"
DBMODE = 0o644
CACHEDIR_TAG = (b"Signature: 8a477f597d28d172789f06886806bc55\n"
                b"# This file is a cache directory tag created by man-db.\n"
                b"# For information about cache directory tags, see:\n"
                b"#\thttp://www.brynosaurus.com/cachedir/\n")
_GLOB = re.compile(r"[*?\[]")


def _key_bytes(s: str) -> bytes:
    return s.encode("latin-1")


def mandb(inv: Invocation) -> int:
    """``mandb -c|-p [-q] [-s]`` (man-db 2.11.2 ``main``); see the module note."""
    opts = _options(inv.argv[1:])
    # a deferral met on the way (a page the model does not read) leaves nothing of what was
    # made before it (cat directories, CACHEDIR.TAG): the simulator's model savepoint
    return _Run(inv, *opts).main()


def _options(args: list[str]) -> tuple[bool, bool]:
    """argp over mandb's options: (create, strays). Only the forms the maintainer scripts
    use are modelled; the rest defers."""
    create = purge_off = False
    quiet = 0
    strays = True
    longs = {"create": "c", "no-purge": "p", "quiet": "q", "no-straycats": "s"}
    for i, a in enumerate(args):
        if a == "--":
            if args[i + 1:]:
                raise Defer("mandb with a MANPATH operand (not modelled)")
            break
        if a.startswith("--"):
            name = a[2:]
            hits = [v for k, v in longs.items() if k.startswith(name)] if name else []
            if name in longs:
                hits = [longs[name]]
            if len(hits) != 1:
                raise Defer(f"mandb option {a} (not modelled)")
            letters = hits
        elif a.startswith("-") and a != "-":
            letters = list(a[1:])
        else:
            raise Defer("mandb with a MANPATH operand (not modelled)")
        for c in letters:
            if c == "c":
                create = True
            elif c == "p":
                purge_off = True
            elif c == "q":
                quiet += 1
            elif c == "s":
                strays = False
            else:
                raise Defer(f"mandb option -{c} (not modelled)")
    if not quiet:
        raise Defer("mandb without -q: its progress messages are not modelled")
    if not create and not purge_off:
        raise Defer("mandb without -c or -p purges missing pages (not modelled)")
    return create, strays


class _Run:
    """One mandb process: its caches (``whatis_map``, the pages' ``ult_cache``) live for all trees."""

    def __init__(self, inv: Invocation, create: bool, strays: bool):
        self.inv = inv
        self.fs = inv.fs
        self.create = create
        self.check_strays = strays
        creds = getattr(inv.fs, "creds", None)
        self.uid = creds.uid if creds is not None else 0
        self.gid = creds.gid if creds is not None else 0
        users = UserDB(inv)
        man = users.user("man")
        if man is None or len(man) < 4 or not (man[2].isdigit() and man[3].isdigit()):
            raise Defer("mandb: no user man in /etc/passwd (get_man_owner fails)")
        self.man_uid, self.man_gid = int(man[2]), int(man[3])
        if self.uid not in (0, self.man_uid):
            raise Defer(f"mandb run by uid {self.uid}: user databases (not modelled)")
        self.whatis_map: dict[str, tuple[str | None, str | None]] = {}
        self.pages = PageReader(inv)
        self.tried: dict[str, tuple[str, bool]] = {}

    # --- the configuration (manp.c) -----------------------------------------------------

    def _config(self) -> list[tuple[str, str]]:
        """``read_config_file``: the MANDB_MAP (mandir, catdir) pairs, in order."""
        if "MAN_TEST_DISABLE_SYSTEM_CONFIG" in self.inv.env:
            raise Defer("mandb with MAN_TEST_DISABLE_SYSTEM_CONFIG set (not modelled)")
        home = self.inv.env.get("HOME")
        if home:
            try:
                self.fs.read_bytes(posixpath.join(home, ".manpath"))
                raise Defer(f"mandb reads the user configuration {home}/.manpath (not modelled)")
            except OSError:
                pass
        try:
            text = self.fs.read_bytes(CONFIG_FILE)
        except OSError as e:
            raise Defer(f"mandb cannot read {CONFIG_FILE} ({os.strerror(e.errno or 0)})")
        maps = []
        for raw in text.split(b"\n"):
            line = raw.decode("latin-1").lstrip(" \t\r\f\v")
            if not line or line[0] == "#" or line.startswith("NO"):
                continue
            m = re.match(r"MANDB_MAP\s*(\S+)(?:\s+(\S+))?", line)
            if line.startswith("MANDB_MAP") and m:
                cat = m.group(2) or m.group(1)
                if cat == "FSSTND":
                    raise Defer("mandb: an FSSTND catdir in MANDB_MAP (not modelled)")
                maps.append((m.group(1), cat))
            elif re.match(r"(MANDATORY_MANPATH\s*\S|MANPATH_MAP\s*\S+\s+\S|DEFINE\s*\S|"
                          r"SECTIONS?\s*\S|(MIN|MAX)?CATWIDTH\s*[-+]?\d)", line):
                continue
            else:
                raise Defer(f"mandb: a line of {CONFIG_FILE} it does not parse: {line.strip()!r}")
        return maps

    def _catpath(self, maps, name: str) -> str | None:
        """``get_catpath(name, SYSTEM_CAT)``."""
        for key, cont in maps:
            if name.startswith(key):
                suffix = name.rfind("/")
                start = len(key)
                if suffix < 0:
                    return cont + name[start:]
                while suffix > start:
                    suffix -= 1
                    if name[suffix] == "/":
                        break
                if suffix < start:
                    suffix = start
                if suffix < len(name) and name[suffix] == "/":
                    suffix += 1
                cat = cont + name[start:suffix]
                rest = name[suffix:]
                if rest.startswith("man"):
                    rest = rest[3:]
                    cat += "cat"
                return cat + rest
        return None

    def _manpaths(self, maps) -> list[str]:
        """``get_mandb_manpath`` then ``create_pathlist``: the existing directories, without
        those another one already names (by canonical path)."""
        seen, out = set(), []
        for key, _cat in maps:
            if key in out:
                continue
            if _GLOB.search(key) or not key.startswith("/"):
                raise Defer(f"mandb: MANDB_MAP {key} (a glob or relative path: not modelled)")
            try:
                if not self.fs.stat(key).is_dir:
                    continue
                canon = self.pages.canonicalize(key)
            except OSError:
                continue
            if canon not in seen:
                seen.add(canon)
                out.append(key)
        return out

    # --- the main loop (mandb.c) -----------------------------------------------------------

    def main(self) -> int:
        maps = self._config()
        self.maps = maps
        amount = 0
        for mp in self._manpaths(maps):
            amount += self._process_manpath(mp)
            try:
                names = self.fs.readdir(mp)
            except OSError as e:
                raise Defer(f"mandb cannot search {mp} ({os.strerror(e.errno or 0)})")
            for name in names:
                if name.startswith("man"):
                    continue
                amount += self._process_manpath(f"{mp}/{name}")
        self._purge_catdirs()
        if self.create and not amount and self.inv.env.get("MAN_MUST_CREATE") == "1":
            return 1
        return 0

    def _process_manpath(self, manpath: str) -> int:
        catpath = self._catpath(self.maps, manpath)
        if catpath is None:
            raise Defer(f"mandb: no catpath for {manpath}")
        self.tried[catpath] = (manpath, False)
        try:
            if not self.fs.stat(manpath).is_dir:
                return 0
        except OSError:
            return 0
        self.tried[catpath] = (manpath, True)
        index, amount = self._mandb(catpath, manpath)
        if amount:
            self._write_db(catpath, index)
        return amount

    def _mandb(self, catpath: str, manpath: str) -> tuple[Index | None, int]:
        """``mandb``: the cache tag, then a new database or an update of the old one."""
        if catpath != manpath:
            self._cachedir_tag(catpath)
        dbname = f"{catpath}/index.db"
        if self.create:
            index, amount = self._create_db(manpath, catpath)
        else:
            index = self._open_existing(dbname)
            if index is None:
                index, amount = self._create_db(manpath, catpath)
            else:
                amount = self._testmandirs(index, manpath, catpath, self._mtime(dbname), False)
        if index is not None and self.check_strays:
            self._straycats(manpath, catpath)
        return index, amount

    def _mtime(self, path: str) -> int:
        return self.fs.stat(path).st_mtime_ns

    def _open_existing(self, dbname: str) -> Index | None:
        """``dbpaths_copy_to_tmp`` + ``update_db``'s opening and ``sanity_check_db``: the
        records of the existing database, or None when mandb creates a new one."""
        try:
            data = self.fs.read_bytes(dbname)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise Defer(f"mandb cannot copy {dbname} ({os.strerror(e.errno or 0)})")
        try:
            db = Gdbm.open(data)
            records = {}
            for k, v in db.items():
                if not k.endswith(b"\0") or not v.endswith(b"\0") or b"\0" in k[:-1]:
                    raise Defer(f"mandb: {dbname} holds a record that is not a C string")
                records[k[:-1].decode("latin-1")] = v[:-1].split(b"\0")[0].decode("latin-1")
        except (GdbmError, GdbmUnsupported) as e:
            raise Defer(f"mandb: {dbname} is not a gdbm file it reads ({e})")
        if records.get(VER_KEY) != VER_ID:
            raise Defer(f"mandb: {dbname} has no version {VER_ID} (rebuilt: not modelled)")
        return Index(records)

    def _create_db(self, manpath: str, catpath: str) -> tuple[Index | None, int]:
        holder: list[Index] = []
        amount = self._testmandirs(holder, manpath, catpath, 0, True)
        return (holder[0] if holder else None), amount

    # --- files written ----------------------------------------------------------------------

    def _chown_if_possible(self, path: str) -> None:
        """``chown_if_possible``: hand the path to user man when allowed and needed."""
        try:
            st = self.fs.lstat(path)
        except OSError:
            return
        if (self.uid == 0 or (self.uid == self.man_uid and st.st_uid == self.man_uid
                              and self.gid == self.man_gid)) and \
                (st.st_uid != self.man_uid or st.st_gid != self.man_gid):
            try:
                self.fs.chown(path, self.man_uid, self.man_gid, follow_symlinks=False)
            except OSError as e:
                raise Defer(f"mandb: can't chown {path} ({os.strerror(e.errno or 0)}): fatal")

    def _chmod(self, path: str, mode: int) -> None:
        try:
            self.fs.chmod(path, mode)
        except OSError as e:
            raise Defer(f"mandb: can't chmod {path} ({os.strerror(e.errno or 0)})")

    def _cachedir_tag(self, catpath: str) -> None:
        tag = f"{catpath}/CACHEDIR.TAG"
        try:
            self.fs.open_handle(tag, os.O_RDONLY).close()
            exists = True
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise Defer(f"mandb: {tag} cannot be opened ({os.strerror(e.errno or 0)})")
            try:
                self.fs.write_bytes(tag, CACHEDIR_TAG, 0o666 & ~self.inv.umask)
                exists = True
            except OSError:
                exists = False
        if exists:
            self._chown_if_possible(tag)
            self._chmod(tag, DBMODE)

    def _mkdir(self, path: str) -> bool:
        try:
            self.fs.mkdir(path, 0o755)       # mkcatdirs sets umask 022 around this
            return True
        except OSError:
            return False

    def _is_dir(self, path: str) -> bool:
        try:
            return self.fs.stat(path).is_dir
        except OSError:
            return False

    def _mkcatdirs(self, mandir: str, catdir: str) -> None:
        if not self._is_dir(catdir):
            self._mkdir(catdir)
            self._chown_if_possible(catdir)
        if self._is_dir(catdir):
            for j in range(1, 10):
                if self._is_dir(f"{mandir}/man{j}") and not self._is_dir(f"{catdir}/cat{j}"):
                    self._mkdir(f"{catdir}/cat{j}")
                    self._chown_if_possible(f"{catdir}/cat{j}")

    def _fix_permissions_tree(self, catdir: str) -> None:
        if not self._is_dir(catdir):
            return
        for d in [catdir] + [f"{catdir}/cat{i}" for i in range(1, 10)]:
            try:
                st = self.fs.stat(d)
            except OSError:
                continue
            if st.st_mode & _stat.S_ISGID:
                self._chmod(d, _stat.S_IMODE(st.st_mode) & ~_stat.S_ISGID)
            self._chown_if_possible(d)

    def _write_db(self, catpath: str, index: Index) -> None:
        """The renamed database after ``reorganize``: a new gdbm file, keys sorted."""
        try:
            bsize = self.fs.statvfs(catpath).f_bsize
        except (OSError, AttributeError, NotImplementedError):
            raise Defer(f"mandb: the block size of {catpath}'s filesystem is not known")
        db = Gdbm.create(bsize)
        for key in sorted(index.records, key=_key_bytes):
            db.store(_key_bytes(key) + b"\0", _key_bytes(index.records[key]) + b"\0", False)
        path = f"{catpath}/index.db"
        tmp = f"{catpath}/.nuwa-mandb.tmp"
        try:
            self.fs.write_bytes(tmp, db.data(), DBMODE & ~self.inv.umask)
            self.fs.rename(tmp, path)
        except OSError as e:
            raise Defer(f"mandb cannot write {path} ({os.strerror(e.errno or 0)})")
        self._chmod(path, DBMODE)
        self._chown_if_possible(path)

    # --- the walk (check_mandirs.c) ---------------------------------------------------------

    def _testmandirs(self, index, path: str, catpath: str, last_ns: int, create: bool) -> int:
        """``testmandirs``: the man* subdirectories modified since ``last_ns`` (all when 0).
        ``index`` is the Index to update, or (create) a list that receives a new one."""
        self._fix_permissions_tree(catpath)
        try:
            names = self.fs.readdir(path)
        except OSError as e:
            raise Defer(f"mandb cannot search {path} ({os.strerror(e.errno or 0)})")
        amount = 0
        dirs = []
        for name in names:
            if not name.startswith("man"):
                continue
            try:
                st = self.fs.stat(f"{path}/{name}")
            except OSError:
                continue
            if not st.is_dir:
                continue
            if last_ns and st.st_mtime_ns <= last_ns:
                continue
            if create and not isinstance(index, Index) and not index:
                self._mkcatdirs(path, catpath)
                index.append(Index({VER_KEY: VER_ID}))
            dirs.append(name)
            amount += 1
        target = (index[0] if index else None) if isinstance(index, list) else index
        for name in dirs:
            self._add_dir_entries(target, path, name)
        return amount

    def _add_dir_entries(self, index: Index, path: str, infile: str) -> None:
        d = f"{path}/{infile}"
        try:
            names = self.fs.readdir(d)
        except OSError as e:
            raise Defer(f"mandb cannot search {d}/ ({os.strerror(e.errno or 0)})")
        keep = []
        for name in names:
            if name.startswith(".") and len(os.fsencode(name)) < 3:
                continue
            try:
                # order_files opens each name (O_RDONLY): what it cannot open is left out
                self.fs.open_handle(f"{d}/{name}", os.O_RDONLY).close()
            except OSError:
                continue
            keep.append(name)
        # order_files sorts by the first block on disk; the records do not depend on the
        # order (store.py checks every competition for that)
        for name in sorted(keep, key=os.fsencode):
            self._test_manfile(index, f"{d}/{name}", path)

    def _test_manfile(self, index: Index, file: str, path: str) -> None:
        info = filename_info(file)
        if info is None:
            return
        base, stem_len = info.name, len(os.fsencode(file))
        stem = comp_info(file)
        if stem is not None:
            stem_len = len(os.fsencode(stem[0]))
        try:
            st = self.fs.lstat(file)
        except OSError:
            raise Defer(f"mandb: {file} vanished while it was read")
        info.mtime = divmod(st.st_mtime_ns, 10 ** 9)
        info.name = None
        if st.st_size == 0:
            return
        exists = _lookup_exact(index, base, info.ext)
        if exists is not None and exists.comp != (info.comp or "-"):
            raise Defer(f"mandb: {file} competes with a record of another compression "
                        f"extension ({exists.comp})")
        ult = self.pages.ult_src(file, path, st)
        if ult is None:
            return
        ult_path, trace = ult
        info.id = ULT_MAN if os.fsencode(ult_path)[:stem_len] == os.fsencode(file)[:stem_len] \
            else SO_MAN
        if ult_path not in self.whatis_map:
            self.whatis_map[ult_path] = self.pages.find_name(ult_path)
        whatis, filters = self.whatis_map[ult_path]
        info.pointer = None
        info.filter = filters
        if whatis is None:
            return
        descs = parse_descriptions(_b(base), whatis)
        try:
            self._store_descriptions(index, descs, info, path, _b(base), trace)
        except StoreFailed as e:
            raise Defer(f"mandb: storing {file} fails at {e} (which page wins depends on the "
                        f"order mandb reads them in)")
        except OrderDependent as e:
            raise Defer(f"mandb: {e} depends on the order mandb reads pages in (their disk blocks)")

    def _store_descriptions(self, index: Index, descs, info: Mandata, path: str, base: str,
                            trace: list[str]) -> None:
        trace_infos = {t: filename_info(t) for t in trace}
        whatis_infos = []
        for name, whatis in descs:
            wi = Mandata(ext=info.ext, sec=info.sec, id=info.id, comp=info.comp,
                         filter=info.filter, whatis=whatis, mtime=info.mtime)
            found_real = found_external = False
            if base == name:
                found_real = True
            else:
                for i, t in enumerate(trace):
                    ti = trace_infos.get(t)
                    if ti is None or _b(ti.name) != name:
                        continue
                    if not (t.startswith(path) and t[len(path):].startswith("/man")):
                        found_external = True
                        break
                    wi.ext, wi.sec = ti.ext, ti.sec
                    if i == len(trace) - 1:
                        if info.id == SO_MAN:
                            wi.id = ULT_MAN
                    elif info.id == ULT_MAN:
                        wi.id = SO_MAN
                    wi.comp = ti.comp
                    try:
                        wi.mtime = divmod(self.fs.lstat(t).st_mtime_ns, 10 ** 9)
                    except OSError:
                        wi.mtime = info.mtime
                    found_real = True
            if found_external:
                continue
            if not found_real:
                wi.name = name
                wi.id = WHATIS_MAN if info.id < STRAY_CAT else WHATIS_CAT
                wi.whatis = None
                whatis_infos.append(wi)
                continue
            index.dbstore(wi, name)
        pointer = None
        for t in trace:
            ti = trace_infos.get(t)
            if ti is not None and ti.sec == info.sec and ti.ext == info.ext:
                pointer = ti
        for wi in whatis_infos:
            name = wi.name
            wi.name = None
            wi.pointer = _b(pointer.name)
            index.dbstore(wi, name)

    # --- stray cats, obsolete cat directories -------------------------------------------------

    def _straycats(self, manpath: str, catpath: str) -> None:
        """``straycats``: only that there are none (a stray cat page is deferred)."""
        for catdir in dict.fromkeys((manpath, catpath)):
            try:
                names = self.fs.readdir(catdir)
            except OSError as e:
                raise Defer(f"mandb: can't search directory {catdir} ({os.strerror(e.errno or 0)})")
            for sub in names:
                if not sub.startswith("cat"):
                    continue
                cdir = f"{catdir}/{sub}"
                try:
                    pages = self.fs.readdir(cdir)
                except OSError as e:
                    raise Defer(f"mandb: can't search directory {cdir} ({os.strerror(e.errno or 0)})")
                for page in pages:
                    if page.startswith(".") and len(os.fsencode(page)) < 3:
                        continue
                    mandir = f"{manpath}/man{sub[3:]}/{page}"
                    ext = mandir.rfind(".")
                    if ext < 0:
                        continue
                    if comp_info(mandir[ext:]) is not None:
                        mandir = mandir[:ext]
                    dot = mandir.rfind(".")
                    if dot < 0 or not mandir[dot + 1:].startswith(sub[3:]):
                        continue
                    if self.pages.access(mandir) or self.pages.comp_file(mandir):
                        continue
                    raise Defer(f"mandb: {cdir}/{page} is a stray cat page (not modelled)")

    def _purge_catdirs(self) -> None:
        """``purge_catdirs``: an obsolete cat directory to remove is deferred."""
        for path, (manpath, _seen) in self.tried.items():
            base = posixpath.basename(path)
            if _is_lang_dir(base):
                continue
            self._purge_catsubdirs(manpath, path)
            try:
                names = self.fs.readdir(path)
            except OSError:
                continue
            for sub in names:
                if sub.startswith("cat") or not _is_lang_dir(sub):
                    continue
                subpath = f"{path}/{sub}"
                subtried = self.tried.get(subpath)
                if subtried is not None and subtried[1]:
                    self._purge_catsubdirs(subtried[0], subpath)
                elif subtried is None and self._is_dir(subpath):
                    raise Defer(f"mandb removes the obsolete cat directory {subpath} (not modelled)")

    def _purge_catsubdirs(self, manpath: str, catpath: str) -> None:
        try:
            names = self.fs.readdir(catpath)
        except OSError:
            return
        for name in names:
            if not name.startswith("cat"):
                continue
            try:
                self.fs.stat(f"{manpath}/man{name[3:]}")
            except OSError as e:
                if e.errno == errno.ENOENT:
                    raise Defer(f"mandb removes the obsolete cat directory {catpath}/{name} (not modelled)")


def _is_lang_dir(base: str) -> bool:
    return (len(base) >= 2 and "a" <= base[0] <= "z" and "a" <= base[1] <= "z"
            and (len(base) == 2 or not "a" <= base[2] <= "z"))


def _lookup_exact(index: Index, base: str, ext: str) -> Mandata | None:
    """``dblookup_exact(dbf, base, ext, true)``: the record of exactly this name and
    extension, or None."""
    page = _b(base)
    cont = index.records.get(name_to_key(page))
    if cont is None:
        return None
    if not cont.startswith("\t"):
        d = split_content(cont)
        if (d.name or page) == page and d.ext == ext:
            return d
        return None
    parts = cont[1:].split("\t")
    for n, e in zip(parts[0::2], parts[1::2]):
        if n == page and e == ext:
            multi = index.records.get(f"{n}\t{e}")
            return split_content(multi) if multi is not None else None
    return None
