"""Model of GNU find 4.9 (findutils) for the forms maintainer scripts use.

find walks the image through ``inv.fs``. Its output order is the order ``inv.fs.readdir``
returns, because GNU find (fts without a comparison function) emits entries in the kernel's
readdir order: on ext4 that is the on-disk (hash) order, which the ext4 backend reproduces;
on MemoryFS it is insertion order. Tests compare against the real find on a host directory,
whose order HostDirFS passes through.

Supported: ``-P``; global ``-maxdepth -mindepth -depth -xdev -mount -noleaf``; tests ``-name
-iname -path -wholename -ipath -iwholename -regex -type -user -group -uid -gid -nouser -nogroup
-perm -empty -links -newer -size -true -false -readable -writable -executable``; actions
``-print -print0 -delete -exec CMD {} ; -exec CMD {} + -prune -quit -ls(deferred)``; operators
``( ) ! -not -a -and -o -or ,``. Time tests (``-mtime`` ...) depend on the clock at boot and are
deferred, as is ``-ok``; ``-execdir CMD ;`` and ``-execdir CMD {} +`` run the command in the
matched file's directory with ``{}`` as ``./NAME``, a ``+`` batch being run whenever the
directory changes (findutils ``impl_pred_exec``); ``-printf`` ``-printf`` with the name directives ``%p %f %h %P
%%`` and the escapes ``\\n \\t \\0 \\\\`` (what initramfs-tools' ``copy_modules_dir`` uses; other
directives are deferred).

Symbolic links (``-P``, the default; ``-H``; ``-L``; the test ``-xtype``) follow gnulib fts as
find drives it: with ``-L`` (``-H``: the starting points only) an entry is stat()ed; a
dangling link (ENOENT) is looked at itself (``-type l``), any other failure (ELOOP for a link
cycle) is reported and the entry skipped (status 1). A followed directory that is one of its
own ancestors (same device and inode) is not entered: "File system loop detected" (FTS_DC).
``-xtype`` looks at what ``-type`` does not (findutils ``pred_xtype``). ``-follow``, wherever
it stands, makes the whole traversal ``-L``'s (findutils 4.9 opens fts after parsing; the manual's
"affects only the tests after it" no longer holds). ``-delete`` with links followed is deferred.
"""

from __future__ import annotations

import errno
import posixpath
import re
import stat as _stat

from nuwa.script.commands._common import UserDB, apath, err, errno_text, quote
from nuwa.script.commands._regex import _CLASSES, compile_posix
from nuwa.script.commands.modes import ModeError, adjust_mode, compile_mode
from nuwa.script.context import Defer, Invocation


def glob_to_re(pat: str, icase: bool = False) -> re.Pattern:
    """An fnmatch(3) pattern (no FNM_PATHNAME/PERIOD: ``*`` matches ``/`` and dot files)."""
    out, i, n = [], 0, len(pat)
    while i < n:
        c = pat[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "\\" and i < n:
            out.append(re.escape(pat[i]))
            i += 1
        elif c == "[":
            j = i
            if j < n and pat[j] in "!^":
                j += 1
            if j < n and pat[j] == "]":
                j += 1
            while j < n and pat[j] != "]":
                if pat[j] == "[" and j + 1 < n and pat[j + 1] == ":":
                    k = pat.find(":]", j + 2)
                    j = k + 2 if k >= 0 else j + 1
                    continue
                j += 1
            if j >= n:
                out.append("\\[")
                continue
            body = pat[i:j]
            i = j + 1
            neg = body[:1] in ("!", "^")
            if neg:
                body = body[1:]
            cls = []
            k = 0
            while k < len(body):
                if body.startswith("[:", k):
                    e = body.find(":]", k)
                    cls.append(_CLASSES.get(body[k + 2:e], ""))
                    k = e + 2
                    continue
                ch = body[k]
                cls.append("\\" + ch if ch in "\\[]^" else ch)
                k += 1
            out.append("[" + ("^" if neg else "") + "".join(cls) + "]")
        else:
            out.append(re.escape(c))
    return re.compile("(?s:" + "".join(out) + r")\Z", re.IGNORECASE if icase else 0)


class _Node:
    __slots__ = ("kind", "args", "kids")

    def __init__(self, kind, args=None, kids=None):
        self.kind, self.args, self.kids = kind, args, kids or []


_ACTIONS = {"-print", "-print0", "-delete", "-exec", "-prune_only", "-quit", "-ok", "-execdir", "-printf",
            "-fprint", "-ls", "-fls", "-fprintf", "-okdir"}
_GLOBAL = {"-maxdepth", "-mindepth", "-depth", "-xdev", "-mount", "-noleaf", "-ignore_readdir_race",
           "-d", "-warn", "-nowarn"}
_DEFERRED = {"-mtime", "-mmin", "-atime", "-amin", "-ctime", "-cmin", "-newermt", "-anewer", "-cnewer",
             "-used", "-fprintf", "-fprint", "-fprint0", "-ls", "-fls", "-ok", "-okdir",
             "-samefile", "-inum", "-fstype", "-context", "-daystart",
             "-lname", "-ilname", "-iregex", "-newerXY", "-files0-from"}

#: -regextype values modelled: name -> extended (POSIX ERE) or not (BRE); "emacs", find's
#: default, keeps the translation -regex always had
_REGEXTYPES = {"posix-extended": True, "posix-egrep": True, "egrep": True, "posix-basic": False, "emacs": True}


class _Find:
    def __init__(self, inv: Invocation):
        self.inv = inv
        self.maxdepth: int | None = None
        self.mindepth = 0
        self.depth_first = False
        self.has_action = False
        self.pending_plus: dict[int, tuple[list[str], list[str]]] = {}
        #: -execdir ... + batches: the directory the pending items of each batch are in
        self.pending_dir: dict[int, str | None] = {}
        self.status = 0
        self.quit = False
        self.db: UserDB | None = None
        self.seen_test = None
        self.follow = "P"  # -P, -H or -L: which entries are stat()ed instead of lstat()ed
        self.has_delete = False
        self.ancestors: list[tuple[tuple[int, int], str]] = []  # -L: (dev, ino) and path of open dirs

    # ---- expression parsing (precedence: ! > -a > -o > ,) --------------------------------
    def parse(self, toks: list[str]) -> _Node:
        self.toks, self.i = toks, 0
        if not toks:
            return _Node("true")
        node = self.comma()
        if self.i < len(toks):
            t = toks[self.i]
            if t == ")":
                raise _Usage("invalid expression; you have too many ')'")
            raise _Usage(f"paths must precede expression: {quote(t)}")
        return node

    def comma(self) -> _Node:
        n = self.or_()
        while self.peek() == ",":
            self.i += 1
            n = _Node("comma", kids=[n, self.or_()])
        return n

    def or_(self) -> _Node:
        n = self.and_()
        while self.peek() in ("-o", "-or"):
            self.i += 1
            n = _Node("or", kids=[n, self.and_()])
        return n

    def and_(self) -> _Node:
        n = self.not_()
        while True:
            t = self.peek()
            if t in ("-a", "-and"):
                self.i += 1
                n = _Node("and", kids=[n, self.not_()])
            elif t is not None and t not in ("-o", "-or", ")", ","):
                n = _Node("and", kids=[n, self.not_()])
            else:
                return n

    def not_(self) -> _Node:
        t = self.peek()
        if t in ("!", "-not"):
            self.i += 1
            return _Node("not", kids=[self.not_()])
        return self.primary()

    def peek(self):
        return self.toks[self.i] if self.i < len(self.toks) else None

    def arg(self, name: str) -> str:
        if self.i >= len(self.toks):
            raise _Usage(f"missing argument to `{name}'")
        a = self.toks[self.i]
        self.i += 1
        return a

    def primary(self) -> _Node:
        t = self.toks[self.i]
        self.i += 1
        if t == "(":
            if self.peek() == ")":
                raise _Usage("invalid expression; empty parentheses are not allowed.")
            n = self.comma()
            if self.peek() != ")":
                raise _Usage("invalid expression; I was expecting to find a ')' somewhere but did not see one.")
            self.i += 1
            return n
        if t in _DEFERRED:
            raise Defer(f"find {t} is not modelled")
        if t in _GLOBAL:
            # findutils 4.9 no longer warns about global options after tests
            if t in ("-maxdepth", "-mindepth"):
                a = self.arg(t)
                if not a.isdigit():
                    raise _Usage(f"Expected a positive decimal integer argument to {t}, but got {quote(a)}")
                if t == "-maxdepth":
                    self.maxdepth = int(a)
                else:
                    self.mindepth = int(a)
            elif t in ("-depth", "-d"):
                self.depth_first = True
            return _Node("true")
        self.seen_test = self.seen_test or t
        if t in ("-name", "-iname"):
            return _Node("name", glob_to_re(self.arg(t), t == "-iname"))
        if t in ("-path", "-wholename", "-ipath", "-iwholename"):
            return _Node("path", glob_to_re(self.arg(t), t.startswith("-i")))
        if t == "-regextype":
            # a positional option: it changes the -regex tests that follow it (findutils
            # parser.c, parse_regextype)
            kind = self.arg(t)
            if kind not in _REGEXTYPES:
                raise Defer(f"find -regextype {kind} is not modelled")
            self.regex_extended = _REGEXTYPES[kind]
            return _Node("true")
        if t == "-regex":
            return _Node("regex", compile_posix(self.arg(t), getattr(self, "regex_extended", True)))
        if t in ("-type", "-xtype"):
            a = self.arg(t)
            types = a.split(",")
            if not all(x in "fdlbcps" and len(x) == 1 for x in types):
                raise _Usage(f"Unknown argument to -type: {a}")
            return _Node("type" if t == "-type" else "xtype", set(types))
        if t in ("-user", "-group", "-uid", "-gid"):
            a = self.arg(t)
            if t in ("-uid", "-gid"):
                return _Node("num_" + t[1:], _numarg(a, t))
            self.db = self.db or UserDB(self.inv)
            v = (self.db.uid if t == "-user" else self.db.gid)(a)
            if v is None:
                raise _Usage(f"{'' if t == '-user' else 'group '}{quote(a)} is not the name of a known "
                             f"{'user' if t == '-user' else 'group'}" if t == "-user" else
                             f"{quote(a)} is not the name of an existing group")
            return _Node("uid" if t == "-user" else "gid", v)
        if t in ("-nouser", "-nogroup"):
            self.db = self.db or UserDB(self.inv)
            return _Node(t[1:])
        if t == "-perm":
            return _Node("perm", _perm(self.arg(t)))
        if t == "-empty":
            return _Node("empty")
        if t == "-links":
            return _Node("links", _numarg(self.arg(t), t))
        if t == "-size":
            return _Node("size", _size(self.arg(t)))
        if t == "-newer":
            a = self.arg(t)
            try:
                ref = self.inv.fs.stat(apath(self.inv, a))
            except OSError as e:
                raise _Usage(f"{quote(a)}: {errno_text(e)}") from None
            return _Node("newer", ref.st_mtime_ns)
        if t in ("-true", "-false"):
            return _Node(t[1:])
        if t in ("-readable", "-writable", "-executable"):
            return _Node(t[1:])
        if t in ("-print", "-print0"):
            self.has_action = True
            return _Node(t[1:])
        if t == "-printf":
            self.has_action = True
            return _Node("printf", _printf_format(self.arg(t)))
        if t == "-follow":
            # findutils 4.9 parse_follow: the traversal's link handling becomes -L's for the
            # whole run (fts is opened after parsing), whatever the position; no warning
            self.follow = "L"
            if self.has_delete:
                raise Defer("find -follow with -delete is not modelled")
            return _Node("true")
        if t == "-delete":
            if self.follow != "P":
                raise Defer(f"find -{self.follow} with -delete is not modelled")
            self.has_delete = True
            self.has_action = True
            self.depth_first = True
            return _Node("delete")
        if t == "-prune":
            return _Node("prune")
        if t == "-quit":
            self.has_action = True  # no implicit -print
            return _Node("quit")
        if t == "-execdir":
            if self.inv.run is None:
                raise Defer("find -execdir needs the interpreter")
            for d in self.inv.env.get("PATH", "").split(":"):
                if not d.startswith("/"):  # find refuses -execdir then (an "insecure" PATH)
                    raise Defer("find -execdir with a relative directory in PATH is not modelled")
            self.has_action = True
            cmd = []
            while True:
                if self.i >= len(self.toks):
                    raise _Usage("missing argument to `-execdir'")
                a = self.toks[self.i]
                self.i += 1
                if a == ";" and cmd:
                    return _Node("execdir", (cmd, None))
                if a == "+" and cmd and cmd[-1] == "{}":
                    idx = len(self.pending_plus)
                    self.pending_plus[idx] = (cmd[:-1], [])
                    self.pending_dir[idx] = None
                    return _Node("execdir", (cmd[:-1], idx))
                cmd.append(a)
        if t == "-exec":
            if self.inv.run is None:  # decide before any effect (-delete) happens
                raise Defer("find -exec needs the interpreter")
            self.has_action = True
            cmd = []
            while True:
                if self.i >= len(self.toks):
                    raise _Usage("missing argument to `-exec'")
                a = self.toks[self.i]
                self.i += 1
                if a == ";":
                    if not cmd:
                        raise _Usage("missing argument to `-exec'")
                    return _Node("exec", cmd)
                if a == "+" and cmd and cmd[-1] == "{}":
                    node = _Node("execplus", (cmd[:-1], len(self.pending_plus)))
                    self.pending_plus[len(self.pending_plus)] = (cmd[:-1], [])
                    return node
                cmd.append(a)
        if t.startswith("-"):
            raise Defer(f"find {t} is not modelled")
        raise _Usage(f"paths must precede expression: {quote(t)}")

    # ---- evaluation --------------------------------------------------------------------------
    def ev(self, n: _Node, path: str, ipath: str, st, depth: int) -> bool:
        k = n.kind
        if k == "and":
            return self.ev(n.kids[0], path, ipath, st, depth) and self.ev(n.kids[1], path, ipath, st, depth)
        if k == "or":
            return self.ev(n.kids[0], path, ipath, st, depth) or self.ev(n.kids[1], path, ipath, st, depth)
        if k == "not":
            return not self.ev(n.kids[0], path, ipath, st, depth)
        if k == "comma":
            self.ev(n.kids[0], path, ipath, st, depth)
            return self.ev(n.kids[1], path, ipath, st, depth)
        if k == "true":
            return True
        if k == "false":
            return False
        if k == "name":
            base = path.rstrip("/").rsplit("/", 1)[-1] if path.rstrip("/") else "/"
            return n.args.match(base) is not None
        if k == "path":
            return n.args.match(path) is not None
        if k == "regex":
            return n.args.match(path) is not None and n.args.match(path).end() == len(path)
        if k == "type":
            return _ftype(st.st_mode) in n.args
        if k == "xtype":
            return self.xtype(path, ipath, st, depth) in n.args
        if k == "uid":
            return st.st_uid == n.args
        if k == "gid":
            return st.st_gid == n.args
        if k == "num_uid":
            return _cmpnum(st.st_uid, n.args)
        if k == "num_gid":
            return _cmpnum(st.st_gid, n.args)
        if k == "nouser":
            return self.db.user_by_uid(st.st_uid) is None
        if k == "nogroup":
            return self.db.grp_by_gid(st.st_gid) is None
        if k == "perm":
            how, mode = n.args
            m = _stat.S_IMODE(st.st_mode)
            if how == "=":
                return m == mode
            if how == "-":
                return m & mode == mode
            return mode == 0 or bool(m & mode)
        if k == "empty":
            if _stat.S_ISDIR(st.st_mode):
                try:
                    return not self.inv.fs.readdir(ipath)
                except OSError:
                    return False
            return _stat.S_ISREG(st.st_mode) and st.st_size == 0
        if k == "links":
            return _cmpnum(st.st_nlink, n.args)
        if k == "size":
            unit, (how, val) = n.args
            size = -(-st.st_size // unit)
            return _cmpnum(size, (how, val))
        if k == "newer":
            return st.st_mtime_ns > n.args
        if k in ("readable", "writable"):
            return True  # maintainer scripts run as root
        if k == "executable":
            return _stat.S_ISDIR(st.st_mode) or bool(st.st_mode & 0o111)
        if k == "print":
            self.inv.out(path + "\n")
            return True
        if k == "print0":
            self.inv.out(path + "\0")
            return True
        if k == "printf":
            self.inv.out("".join(_printf_piece(piece, path, self.top) for piece in n.args))
            return True
        if k == "prune":
            if not self.depth_first:
                self.pruned = True
            return True
        if k == "quit":
            self.quit = True
            return True
        if k == "delete":
            if depth == 0 and path in (".",):
                return True
            try:
                if _stat.S_ISDIR(st.st_mode):
                    self.inv.fs.rmdir(ipath)
                else:
                    self.inv.fs.unlink(ipath)
            except OSError as e:
                err(self.inv, f"cannot delete {quote(path)}: {errno_text(e)}")
                self.status = 1
                return False
            return True
        if k == "exec":
            argv = [a.replace("{}", path) for a in n.args]
            return self.run(argv) == 0
        if k == "execplus":
            cmd, idx = n.args
            self.pending_plus[idx][1].append(path)
            return True
        if k == "execdir":
            cmd, idx = n.args
            where = posixpath.dirname(ipath.rstrip("/")) or "/"
            name = "./" + (posixpath.basename(ipath.rstrip("/")) or "/")
            if idx is None:
                return self.run([a.replace("{}", name) for a in cmd], where) == 0
            if self.pending_dir[idx] not in (None, where):
                self.flush_execdir(idx)
            self.pending_dir[idx] = where
            self.pending_plus[idx][1].append(name)
            return True
        raise AssertionError(k)

    def flush_execdir(self, idx: int) -> None:
        """Run a pending ``-execdir ... +`` batch in its directory."""
        cmd, items = self.pending_plus[idx]
        if items and self.run(cmd + items, self.pending_dir[idx]) != 0:
            self.status = 1
        self.pending_plus[idx] = (cmd, [])
        self.pending_dir[idx] = None

    def run(self, argv: list[str], cwd: str | None = None) -> int:
        if self.inv.run is None:
            raise Defer("find -exec needs the interpreter")
        status, out, errb = self.inv.run(argv, b"") if cwd is None else self.inv.run(argv, b"", None, cwd)
        self.inv.out(out)
        self.inv.err(errb)
        return status

    def follows(self, depth: int) -> bool:
        """Whether an entry at ``depth`` is stat()ed (findutils ``following_links``)."""
        return self.follow == "L" or (self.follow == "H" and depth == 0)

    def entry_stat(self, ip: str, depth: int):
        """The status fts gives an entry: lstat, or stat with -L/-H, falling back to lstat for a
        dangling link (gnulib fts_stat: only ENOENT falls back; ELOOP and the rest are errors)."""
        if not self.follows(depth):
            return self.inv.fs.lstat(ip)
        try:
            return self.inv.fs.stat(ip)
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            return self.inv.fs.lstat(ip)

    def xtype(self, path: str, ipath: str, st, depth: int) -> str:
        """The type ``-xtype`` sees: the other stat of a link (findutils ``pred_xtype``)."""
        try:
            if self.follows(depth):
                return _ftype(self.inv.fs.lstat(ipath).st_mode)
            if not _stat.S_ISLNK(st.st_mode):
                return _ftype(st.st_mode)
            return _ftype(self.inv.fs.stat(ipath).st_mode)
        except OSError as e:
            if not self.follows(depth) and e.errno in (errno.ENOENT, errno.ENOTDIR):
                return "l"  # optionl_stat falls back to the link itself
            err(self.inv, f"{quote(path)}: {errno_text(e)}")
            self.status = 1
            return ""

    def walk(self, expr: _Node, top: str) -> None:
        self.top = top
        ip = apath(self.inv, top)
        try:
            st = self.entry_stat(ip, 0)
        except OSError as e:
            err(self.inv, f"{quote(top)}: {errno_text(e)}")
            self.status = 1
            return
        self.ancestors = []
        self.visit(expr, top, ip, st, 0)

    def visit(self, expr, path, ip, st, depth) -> None:
        if self.quit:
            return
        if self.follow != "P" and _stat.S_ISDIR(st.st_mode):
            # a followed link back to an open directory: fts reports FTS_DC and find skips it
            key = (st.st_dev, st.st_ino)
            for k, apath_ in self.ancestors:
                if k == key:
                    err(self.inv, f"File system loop detected; {quote(path)} is part of the same "
                                  f"file system loop as {quote(apath_)}.")
                    self.status = 1
                    return
        self.pruned = False
        if not self.depth_first and depth >= self.mindepth:
            self.ev(expr, path, ip, st, depth)
        descend = _stat.S_ISDIR(st.st_mode) and not self.pruned and (self.maxdepth is None or depth < self.maxdepth)
        if descend and not self.quit:
            self.ancestors.append(((st.st_dev, st.st_ino), path))
            try:
                names = self.inv.fs.readdir(ip)
            except OSError as e:
                err(self.inv, f"{quote(path)}: {errno_text(e)}")
                self.status = 1
                names = []
            for name in names:
                if self.quit:
                    break
                cp = (path + name) if path.endswith("/") else path + "/" + name
                cip = ip.rstrip("/") + "/" + name
                try:
                    cst = self.entry_stat(cip, depth + 1)
                except OSError as e:
                    err(self.inv, f"{quote(cp)}: {errno_text(e)}")
                    self.status = 1
                    continue
                self.visit(expr, cp, cip, cst, depth + 1)
            self.ancestors.pop()
        if self.depth_first and depth >= self.mindepth and not self.quit:
            self.ev(expr, path, ip, st, depth)


class _Usage(Exception):
    pass


_PRINTF_ESCAPES = {"n": "\n", "t": "\t", "0": "\0", "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
                   "r": "\r", "v": "\v"}


def _printf_format(fmt: str) -> list[str]:
    """Split a ``-printf`` format into literal text and ``%X`` directives (findutils
    ``print.c``, ``insert_fprintf``); what is not modelled is deferred before the walk."""
    out, i = [], 0
    while i < len(fmt):
        c = fmt[i]
        if c == "\\" and i + 1 < len(fmt):
            e = fmt[i + 1]
            if e == "c":
                raise Defer("find -printf \\c is not modelled")
            out.append(_PRINTF_ESCAPES.get(e, "\\" + e))
            i += 2
        elif c == "%" and i + 1 < len(fmt):
            d = fmt[i + 1]
            if d not in "pfhP%":
                raise Defer(f"find -printf %{d} is not modelled")
            out.append("%" + d)
            i += 2
        else:
            out.append(c)
            i += 1
    return out


def _printf_piece(piece: str, path: str, top: str) -> str:
    """One piece of a ``-printf`` format for ``path`` (found under the starting point ``top``)."""
    if len(piece) != 2 or piece[0] != "%":
        return piece
    d = piece[1]
    if d == "%":
        return "%"
    if d == "p":
        return path
    if d == "f":  # gnulib base_name: the last component, a trailing slash kept ("/" stays "/")
        stripped = path.rstrip("/")
        if not stripped:
            return "/"
        return stripped.rsplit("/", 1)[-1] + ("/" if path.endswith("/") else "")
    if d == "h":  # print.c: everything before the last slash, "." when there is none
        return path[: path.rindex("/")] if "/" in path else "."
    rel = path[len(top):]  # %P: the name relative to the starting point
    return rel.lstrip("/") if path != top else ""


def _ftype(mode: int) -> str:
    return {_stat.S_IFREG: "f", _stat.S_IFDIR: "d", _stat.S_IFLNK: "l", _stat.S_IFBLK: "b",
            _stat.S_IFCHR: "c", _stat.S_IFIFO: "p", _stat.S_IFSOCK: "s"}.get(_stat.S_IFMT(mode), "?")


def _numarg(a: str, t: str) -> tuple[str, int]:
    how = a[0] if a[:1] in ("+", "-") else "="
    body = a[1:] if how != "=" else a
    if not body.isdigit():
        raise _Usage(f"invalid argument `{a}' to `{t}'")
    return how, int(body)


def _cmpnum(v: int, arg: tuple[str, int]) -> bool:
    how, n = arg
    return v > n if how == "+" else (v < n if how == "-" else v == n)


def _size(a: str):
    m = re.fullmatch(r"([+-]?)(\d+)([bcwkMG]?)", a)
    if not m:
        raise _Usage(f"invalid -size type `{a[-1:]}'")
    unit = {"": 512, "b": 512, "c": 1, "w": 2, "k": 1024, "M": 1024**2, "G": 1024**3}[m.group(3)]
    return unit, (m.group(1) or "=", int(m.group(2)))


def _perm(a: str):
    how = a[0] if a[:1] in ("-", "/", "+") else "="
    body = a[1:] if how != "=" else a
    if how == "+":
        how = "/"
    try:
        mode = adjust_mode(0, False, 0, compile_mode(body))
    except ModeError:
        raise _Usage(f"invalid mode {quote(body)}") from None
    return how, mode


def find(inv: Invocation) -> int:
    """``find [-P] [PATH...] [EXPRESSION]``."""
    argv = list(inv.argv[1:])
    follow = "P"
    while argv and argv[0] in ("-P", "-H", "-L", "-O0", "-O1", "-O2", "-O3"):
        if argv[0] in ("-P", "-H", "-L"):
            follow = argv[0][1]  # the last one wins
        argv.pop(0)
    paths = []
    while argv and not (argv[0].startswith("-") and len(argv[0]) > 1) and argv[0] not in ("(", "!", ")"):
        paths.append(argv.pop(0))
    f = _Find(inv)
    f.follow = follow
    try:
        expr = f.parse(argv)
    except _Usage as e:
        err(inv, str(e))
        return 1
    if not f.has_action:
        expr = _Node("and", kids=[expr, _Node("print")])
    for top in paths or ["."]:
        if f.quit:
            break
        f.walk(expr, top)
    for idx, (cmd, items) in sorted(f.pending_plus.items()):
        if idx in f.pending_dir:
            f.flush_execdir(idx)
            continue
        if items:
            # GNU find batches up to the argument-size limit; scripts never come near it
            if f.run(cmd + items) != 0:
                f.status = 1
    return f.status
