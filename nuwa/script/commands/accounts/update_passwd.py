"""``update-passwd`` (base-passwd 3.6.1, Debian 12): system accounts brought to the master lists.

The real program is C (``update-passwd.c``); this model follows its ``main``: read
``/usr/share/base-passwd/{passwd,group}.master`` and ``/etc/{passwd,shadow,group}`` with glibc's
``fgetpwent``/``fgetspent``/``fgetgrent`` (:mod:`.upwd_parse`), then for groups and users in
that order ``process_new_entries`` (master entries missing from the system, unless flagged
``FL_NOAUTOADD``), ``process_old_entries`` (system entries with an id in 0-99 that the master
does not name, unless ``FL_NOAUTOREMOVE``) and ``process_changed_groups`` /
``process_changed_accounts`` (id, primary gid, GECOS, home and shell of ids 0-99 and 65534,
except what ``specialusers`` says to keep). Every change counts in ``flag_dirty``.

What it writes (``commit_files``), only when something changed and not with ``--dry-run``:
each of passwd, shadow (only if it was read and held an entry: the program never adds or
removes shadow lines) and group is written whole to ``FILE.upwd-write`` (umask 077), given the
old file's mode and owner, the old file is hard-linked to ``FILE.org`` (replacing an old one),
and the new one renamed over ``FILE``. Lines glibc skips (comments, blank and malformed
lines) are thereby dropped, as with the real program. ``lckpwdf`` leaves ``/etc/.pwd.lock``
(created 0600 if missing) unless ``-L`` or ``--dry-run``; the exit status of ``--dry-run`` is
the number of changes (modulo 256), which is what base-passwd's postinst tests.

Under a debconf frontend (``DEBIAN_HAS_FRONTEND``, not ``--dry-run``) every change is first
asked as the question ``base-passwd/DOMAIN/KIND/NAME/...`` registered from the package's
templates (libdebconfclient: ``REGISTER``, ``SUBST``, ``INPUT``, ``GO`` unless the question was
skipped, ``GET``); the change is made only when the answer is ``true``. The connection is the
frontend's :class:`ConfModule` that the calling script holds (``Invocation.state``).

Deferred, before anything is written, with the reason: NIS compat entries (``+``/``-``),
a NUL byte in a file, account files that are not regular files (or symbolic links), a
``.upwd-write``/``.org`` path or ``/etc/.pwd.lock`` that is a directory or other non-file,
group members holding ``:`` (glibc's ``putgrent`` refuses them half-way), a debconf run without
a running frontend, names with white space in debconf questions.
"""

from __future__ import annotations

import posixpath
import re
import stat as _stat

from nuwa.script.commands.accounts import upwd_parse as P
from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.debconf.frontend import CONFMODULES
from nuwa.script.context import Defer, Invocation

PROG = "update-passwd"
VERSION = "3.6.1"

DEFAULT_PASSWD_MASTER = "/usr/share/base-passwd/passwd.master"
DEFAULT_GROUP_MASTER = "/usr/share/base-passwd/group.master"
WRITE_EXTENSION = ".upwd-write"
BACKUP_EXTENSION = ".org"
#: glibc's PWD_LOCKFILE, used by lckpwdf whatever -P says
PWD_LOCKFILE = "/etc/.pwd.lock"

KEEPHOME, KEEPSHELL, KEEPGECOS, KEEPALL = 0x1, 0x2, 0x4, 0xF
NOAUTOREMOVE, NOAUTOADD = 0x10, 0x20

#: ``specialusers`` and ``specialgroups`` of update-passwd.c (id -> flags; first match wins)
SPECIAL_USERS = {
    0: KEEPALL | NOAUTOREMOVE, 11: KEEPHOME | NOAUTOADD | NOAUTOREMOVE,
    30: KEEPHOME | NOAUTOADD | NOAUTOREMOVE, 31: NOAUTOREMOVE, 33: KEEPHOME,
    35: KEEPALL | NOAUTOADD | NOAUTOREMOVE, 36: KEEPALL | NOAUTOADD | NOAUTOREMOVE, 37: NOAUTOREMOVE,
    41: KEEPHOME | NOAUTOREMOVE, 70: NOAUTOREMOVE, **{i: KEEPALL | NOAUTOADD | NOAUTOREMOVE for i in range(71, 77)},
}
SPECIAL_GROUPS = {
    0: KEEPALL | NOAUTOREMOVE, 11: NOAUTOADD | NOAUTOREMOVE, 31: NOAUTOADD | NOAUTOREMOVE,
    32: NOAUTOREMOVE, 35: NOAUTOADD | NOAUTOREMOVE, 36: NOAUTOADD | NOAUTOREMOVE, 41: NOAUTOREMOVE,
    70: NOAUTOREMOVE,
}

#: getopt_long's table of main(): long name -> (short letter, takes an argument)
LONG = {
    "passwd-master": ("p", True), "group-master": ("g", True), "passwd": ("P", True),
    "shadow": ("S", True), "group": ("G", True), "sanity-check": ("s", False),
    "verbose": ("v", False), "dry-run": ("n", False), "help": ("h", False), "version": ("V", False),
}
#: the optstring "g:p:G:P:S:snvLhV": letter -> takes an argument (-L has no long form)
SHORT = {"g": True, "p": True, "G": True, "P": True, "S": True, "s": False, "n": False,
         "v": False, "L": False, "h": False, "V": False}


USAGE = (
    "Usage: update-passwd [OPTION]...\n"
    "\n"
    "  -p, --passwd-master=file  Use file as the master account list\n"
    "  -g, --group-master=file   Use file as the master group list\n"
    "  -P, --passwd=file         Use file as the system passwd file\n"
    "  -S, --shadow=file         Use file as the system shadow file\n"
    "  -G, --group=file          Use file as the system group file\n"
    "  -s, --sanity-check        Only perform sanity-checks\n"
    "  -v, --verbose             Show details about what we are doing (recommended)\n"
    "  -n, --dry-run             Just say what we would do but do nothing\n"
    "  -L, --no-locking          Don't try to lock files\n"
    "  -h, --help                Display this information and exit\n"
    "  -V, --version             Show version number and exit\n"
    "\n"
    " File locations used:\n"
    "   master passwd: {}\n"
    "   master group : {}\n"
    "   system passwd: {}\n"
    "   system shadow: {}\n"
    "   system group : {}\n"
    "\n"
    "Report bugs to the Debian bug tracking system, package \"base-passwd\".\n"
    "\n"
)


class _Exit(Exception):
    """``exit(status)`` / ``return status`` from ``main`` part-way."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _flag(table: dict[int, int], ident: int, flag: int) -> bool:
    """``scan_infos``: does the special entry for ``ident`` carry ``flag``?"""
    return bool(table.get(ident, 0) & flag)


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


class Debconf:
    """libdebconfclient over the running frontend: one command line out, one reply in."""

    def __init__(self, inv: Invocation):
        running = inv.state.get(CONFMODULES)
        if not running:
            raise Defer("DEBIAN_HAS_FRONTEND is set but no debconf frontend is running")
        self.cm = running[-1]
        self.value = b""

    def command(self, *words: bytes) -> int:
        """``debconfclient_command``: send, read the reply, keep its text; return atoi(code)."""
        line = b" ".join(words)
        if b"\n" in line:
            raise Defer("a newline in a debconf command of update-passwd")
        reply = self.cm.handle(line.decode("utf-8", "surrogateescape"))
        code, _, value = reply.partition(" ")
        self.value = _b(value)
        m = re.match(r"\s*[+-]?\d+", code)
        return int(m.group(0)) if m else 0

    def check(self, *words: bytes) -> None:
        """``DEBCONF_CHECK`` around REGISTER and SUBST: any failure ends the program."""
        if self.command(*words) != 0:
            raise _Failed()

    def ask(self, priority: bytes, question: bytes) -> bool:
        """``ask_debconf``: INPUT, GO unless skipped (30), GET; the answer is ``true`` or not."""
        ret = self.command(b"INPUT", priority, question)
        if ret == 0:
            ret = self.command(b"GO")
        elif ret == 30:
            ret = 0
        if ret == 0:
            ret = self.command(b"GET", question)
        if ret != 0:
            raise _Failed()
        return self.value == b"true"


class _Failed(Exception):
    """"Debconf interaction failed" and exit 1."""


def _escape(s: bytes) -> bytes:
    """``escape_debconf``: everything but ASCII alphanumerics, ``-`` and ``_`` becomes ``_``."""
    return re.sub(rb"[^A-Za-z0-9_-]", b"_", s)


class UpdatePasswd:
    """One run (see the module documentation); ``out`` collects stdout as the program prints it."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.master_passwd = DEFAULT_PASSWD_MASTER
        self.master_group = DEFAULT_GROUP_MASTER
        self.sys_passwd = "/etc/passwd"
        self.sys_shadow = "/etc/shadow"
        self.sys_group = "/etc/group"
        self.user_domain = b"system"
        self.group_domain = b"system"
        self.dryrun = self.nolock = self.sanity = False
        self.verbose = 0
        self.dirty = 0
        self.debconf: Debconf | None = None

    # -- output ---------------------------------------------------------------------------

    def say(self, text: bytes | str) -> None:
        self.inv.out(text if isinstance(text, bytes) else _b(text))

    def fail(self, text: str, status: int) -> None:
        self.inv.err(text)
        raise _Exit(status)

    # -- options --------------------------------------------------------------------------

    def getopt(self):
        """glibc ``getopt_long`` over argv, one option at a time (so that ``-h``/``-V`` end the
        program before a later bad option is looked at): yields (letter, argument), or the
        message glibc prints and ``?``. Operands are skipped (permutation); ``--`` ends it."""
        argv = self.inv.argv
        prog = argv[0] if argv else PROG
        i = 1
        while i < len(argv):
            a = argv[i]
            i += 1
            if a == "--":
                return
            if a.startswith("--"):
                name, eq, val = a[2:].partition("=")
                if name in LONG:
                    found = [name]
                else:
                    found = [n for n in LONG if n.startswith(name)]
                if not found:
                    yield "?", f"{prog}: unrecognized option '{a}'\n"
                    continue
                if len(found) > 1:
                    poss = "".join(f" '--{n}'" for n in found)
                    yield "?", f"{prog}: option '{a}' is ambiguous; possibilities:{poss}\n"
                    continue
                letter, takes = LONG[found[0]]
                if not takes and eq:
                    yield "?", f"{prog}: option '--{found[0]}' doesn't allow an argument\n"
                elif takes and not eq:
                    if i >= len(argv):
                        yield "?", f"{prog}: option '--{found[0]}' requires an argument\n"
                    else:
                        i += 1
                        yield letter, argv[i - 1]
                else:
                    yield letter, val if takes else None
                continue
            if not a.startswith("-") or a == "-":
                if "POSIXLY_CORRECT" in self.inv.env:
                    return  # no permutation: the first operand ends the options
                continue
            j = 1
            while j < len(a):
                c = a[j]
                j += 1
                if c not in SHORT:
                    yield "?", f"{prog}: invalid option -- '{c}'\n"
                elif not SHORT[c]:
                    yield c, None
                elif j < len(a):
                    yield c, a[j:]
                    break
                elif i < len(argv):
                    i += 1
                    yield c, argv[i - 1]
                else:
                    yield "?", f"{prog}: option requires an argument -- '{c}'\n"

    def options(self) -> None:
        """The option loop of ``main``: each option acts when reached."""
        for key, val in self.getopt():
            if key == "?":
                self.inv.err(val)
                self.fail("Internal error: getopt_long returned unexpected value '?'\n", 1)
            elif key == "p":
                self.master_passwd = val
            elif key == "g":
                self.master_group = val
            elif key == "P":
                self.sys_passwd, self.user_domain = val, b"other"
            elif key == "S":
                self.sys_shadow = val
            elif key == "G":
                self.sys_group, self.group_domain = val, b"other"
            elif key == "v":
                self.verbose += 1
                if self.verbose == 1:
                    self.verbose += 1
            elif key == "s":
                self.sanity = True
            elif key == "n":
                self.dryrun = True
                self.verbose += 1
            elif key == "L":
                self.nolock = True
            elif key == "h":
                self.say(USAGE.format(self.master_passwd, self.master_group, self.sys_passwd,
                                      self.sys_shadow, self.sys_group))
                raise _Exit(0)
            elif key == "V":
                self.say(f"update-passwd {VERSION}\n")
                raise _Exit(0)

    # -- reading --------------------------------------------------------------------------

    def _read(self, kind: str, path: str, shadow: bool = False) -> list[P.Entry] | None:
        """``read_passwd``/``read_group``/``read_shadow``: the entries, or None (shadow absent)."""
        if self.verbose > 2:
            self.say(f"Reading {kind} from {path}\n")
        fs = self.inv.fs
        full = self.inv.path(path)
        try:
            st = fs.stat(full)  # fopen follows symbolic links
        except OSError as e:
            if shadow and e.errno == 2:
                return None
            if e.errno == 2 or e.errno == 13 or e.errno == 20:
                self.fail(f"Error opening {kind} file {path}: {P.strerror(e)}\n", 2)
            raise Defer(f"update-passwd cannot stat {path}: {P.strerror(e)}") from None
        if not _stat.S_ISREG(st.st_mode):
            raise Defer(f"update-passwd reads {path}, which is not a regular file")
        data = fs.read_bytes(full)
        if b"\0" in data:
            raise Defer(f"{path} holds a NUL byte (glibc's line reader truncates there)")
        try:
            return P.read_entries(kind, data)
        except P.NisEntry:
            raise Defer(f"{path} has NIS compat entries (+/-), not modelled") from None

    # -- the checks -----------------------------------------------------------------------

    def _question(self, template: bytes, question: bytes, priority: bytes, subst: list[tuple[bytes, bytes]]) -> bool:
        """REGISTER, SUBST each variable, then ask: True when the change is to be made."""
        if self.debconf is None:
            return True
        if re.search(rb"\s", question):
            raise Defer("a debconf question of update-passwd would hold white space")
        self.debconf.check(b"REGISTER", template, question)
        for var, value in subst:
            self.debconf.check(b"SUBST", question, var, value)
        return self.debconf.ask(priority, question)

    def _domain(self, descr: bytes) -> bytes:
        return self.group_domain if descr == b"group" else self.user_domain

    def new_entries(self, table, system: list, master: list, descr: bytes) -> None:
        """``process_new_entries``: add master entries the system lacks (at the end)."""
        for m in master:
            if P.find_name(system, m.name) is not None:
                continue
            if _flag(table, m.id, NOAUTOADD):
                continue
            q = b"base-passwd/%s/%s/%s/add" % (self._domain(descr), descr, m.name)
            if self._question(b"base-passwd/%s-add" % descr, q, b"medium",
                              [(b"name", m.name), (b"id", b"%d" % m.id)]):
                if self.verbose:
                    self.say(b'Adding %s "%s" (%d)\n' % (descr, m.name, m.id))
                system.append(m.copy())
                self.dirty += 1

    def old_entries(self, table, system: list, master: list, descr: bytes) -> None:
        """``process_old_entries``: remove system entries with ids 0-99 the master lacks."""
        for e in list(system):
            if e.id > 99 or _flag(table, e.id, NOAUTOREMOVE):
                continue
            if P.find_name(master, e.name) is not None:
                continue
            q = b"base-passwd/%s/%s/%s/remove" % (self._domain(descr), descr, e.name)
            if self._question(b"base-passwd/%s-remove" % descr, q, b"high",
                              [(b"name", e.name), (b"id", b"%d" % e.id)]):
                if self.verbose:
                    self.say(b'Removing %s "%s" (%d)\n' % (descr, e.name, e.id))
                del system[next(i for i, x in enumerate(system) if x is e)]
                self.dirty += 1

    def changed_groups(self, groups: list, master: list) -> None:
        """``process_changed_groups``: only the gid of ids 0-99 and 65534."""
        for g in groups:
            if g.id > 99 and g.id != 65534:
                continue
            mc = P.find_name(master, g.name)
            if mc is None or g.id == mc.id:
                continue
            q = b"base-passwd/%s/group/%s/gid/%d/%d" % (self.group_domain, g.name, g.id, mc.id)
            if self._question(b"base-passwd/group-change-gid", q, b"high",
                              [(b"name", g.name), (b"old_gid", b"%d" % g.id), (b"new_gid", b"%d" % mc.id)]):
                if self.verbose:
                    self.say(b"Changing gid of %s from %d to %d\n" % (g.name, g.id, mc.id))
                g.id = g.gid = mc.gid
                self.dirty += 1

    def changed_accounts(self, users: list, groups: list, master: list) -> None:
        """``process_changed_accounts``: uid, gid, GECOS, home, shell of ids 0-99 and 65534."""
        dom = self.user_domain
        for u in users:
            if u.id > 99 and u.id != 65534:
                continue
            mc = P.find_name(master, u.name)
            if mc is None:
                continue
            if u.id != mc.id:
                q = b"base-passwd/%s/user/%s/uid/%d/%d" % (dom, u.name, u.id, mc.id)
                if self._question(b"base-passwd/user-change-uid", q, b"high",
                                  [(b"name", u.name), (b"old_uid", b"%d" % u.id), (b"new_uid", b"%d" % mc.id)]):
                    if self.verbose:
                        self.say(b"Changing uid of %s from %d to %d\n" % (u.name, u.id, mc.id))
                    u.id = u.uid = mc.uid
                    self.dirty += 1
            if u.gid != mc.gid:
                old, new = P.find_id(groups, u.gid), P.find_id(groups, mc.gid)
                oldname = old.name if old else b"ABSENT"
                newname = new.name if new else b"ABSENT"
                q = b"base-passwd/%s/user/%s/gid/%d/%d" % (dom, u.name, u.gid, mc.gid)
                if self._question(b"base-passwd/user-change-gid", q, b"high",
                                  [(b"name", u.name), (b"old_gid", b"%d" % u.gid), (b"old_group", oldname),
                                   (b"new_gid", b"%d" % mc.gid), (b"new_group", newname)]):
                    if self.verbose:
                        self.say(b"Changing gid of %s from %d (%s) to %d (%s)\n"
                                 % (u.name, u.gid, oldname, mc.gid, newname))
                    u.gid = mc.gid
                    self.dirty += 1
            if not _flag(SPECIAL_USERS, u.id, KEEPGECOS) and u.gecos != mc.gecos:
                q = b"base-passwd/%s/user/%s/gecos" % (dom, u.name)
                if self._question(b"base-passwd/user-change-gecos", q, b"low",
                                  [(b"name", u.name), (b"old_gecos", u.gecos), (b"new_gecos", mc.gecos)]):
                    if self.verbose:
                        self.say(b'Changing GECOS of %s from "%s" to "%s".\n' % (u.name, u.gecos, mc.gecos))
                    u.gecos = mc.gecos
                    self.dirty += 1
            if not _flag(SPECIAL_USERS, u.id, KEEPHOME) and u.home != mc.home:
                q = b"base-passwd/%s/user/%s/home/%s/%s" % (dom, u.name, _escape(u.home), _escape(mc.home))
                subst = [(b"name", u.name), (b"old_home", u.home), (b"new_home", mc.home)]
                # the one change the program makes without asking (irc's old home)
                asked = not (u.name == b"irc" and u.home == b"/var/run/ircd")
                if not asked or self._question(b"base-passwd/user-change-home", q, b"high", subst):
                    if self.verbose:
                        self.say(b"Changing home-directory of %s from %s to %s\n" % (u.name, u.home, mc.home))
                    u.home = mc.home
                    self.dirty += 1
            if not _flag(SPECIAL_USERS, u.id, KEEPSHELL) and u.shell != mc.shell:
                q = b"base-passwd/%s/user/%s/shell/%s/%s" % (dom, u.name, _escape(u.shell), _escape(mc.shell))
                if self._question(b"base-passwd/user-change-shell", q, b"medium",
                                  [(b"name", u.name), (b"old_shell", u.shell), (b"new_shell", mc.shell)]):
                    if self.verbose:
                        self.say(b"Changing shell of %s from %s to %s\n" % (u.name, u.shell, mc.shell))
                    u.shell = mc.shell
                    self.dirty += 1

    # -- writing --------------------------------------------------------------------------

    def _writable(self, path: str) -> None:
        """Defer unless ``commit_files`` can replace ``path`` the ordinary way."""
        fs = self.inv.fs
        full = self.inv.path(path)
        if _stat.S_ISLNK(fs.lstat(full).st_mode):
            raise Defer(f"{path} is a symbolic link (update-passwd would replace the link)")
        for extra in (WRITE_EXTENSION, BACKUP_EXTENSION):
            p = full + extra
            if fs.lexists(p) and _stat.S_ISDIR(fs.lstat(p).st_mode):
                raise Defer(f"{path}{extra} is a directory (update-passwd fails half-way)")
        if not fs.exists(posixpath.dirname(full) or "/"):
            raise Defer(f"the directory of {path} is missing")

    def _replace(self, kind: str, path: str, data: bytes) -> None:
        """``write_*`` then ``put_file_in_place``: FILE.upwd-write, modes copied, FILE.org, rename."""
        fs = self.inv.fs
        full = self.inv.path(path)
        new = full + WRITE_EXTENSION
        if self.verbose > 2:
            self.say(f"Writing {kind}-file to {path}{WRITE_EXTENSION}\n")
        if fs.lexists(new):
            fs.unlink(new)
        fs.write_bytes(new, data, 0o600)  # fopen "wx" under umask 077
        if self.verbose > 2:
            self.say(f'Replacing "{path}" with "{path}{WRITE_EXTENSION}"\n')
        st = fs.lstat(full)
        fs.chmod(new, _stat.S_IMODE(st.st_mode))
        fs.chown(new, st.st_uid, st.st_gid, follow_symlinks=False)
        backup = full + BACKUP_EXTENSION
        if fs.lexists(backup):
            fs.unlink(backup)
        fs.link(full, backup)
        fs.rename(new, full)

    def commit(self, users, shadow, groups) -> None:
        """``commit_files``."""
        if not self.dirty:
            if self.verbose:
                self.say("No changes needed\n")
            return
        if self.dryrun:
            self.say(f"Would commit {self.dirty} changes\n")
            return
        for g in groups:
            if any(b":" in m or b"," in m or b"\n" in m for m in g.members):
                raise Defer(f"a member of group {g.name.decode('utf-8', 'replace')} holds ':' "
                            "(glibc's putgrent refuses it after the file was begun)")
        targets = [self.sys_passwd] + ([self.sys_shadow] if shadow else []) + [self.sys_group]
        for t in targets:
            self._writable(t)
        self.say(f"{self.dirty} changes have been made, rewriting files\n")
        if self.verbose == 2:
            self.say(f"Writing passwd-file to {self.sys_passwd}\n")
        self._replace("passwd", self.sys_passwd, b"".join(P.format_passwd(u) for u in users))
        if shadow:
            if self.verbose == 2:
                self.say(f"Writing shadow-file to {self.sys_shadow}\n")
            self._replace("shadow", self.sys_shadow, b"".join(P.format_shadow(s) for s in shadow))
        if self.verbose == 2:
            self.say(f"Writing group-file to {self.sys_group}\n")
        self._replace("group", self.sys_group, b"".join(P.format_group(g) for g in groups))

    def lock(self) -> None:
        """``lckpwdf``: open (create 0600) /etc/.pwd.lock; nothing of the image holds the lock."""
        fs = self.inv.fs
        if fs.lexists(PWD_LOCKFILE):
            if not _stat.S_ISREG(fs.lstat(PWD_LOCKFILE).st_mode):
                raise Defer(f"{PWD_LOCKFILE} is not a regular file")
            return
        try:
            fs.write_bytes(PWD_LOCKFILE, b"", 0o600 & ~self.inv.umask)
        except OSError as e:  # no /etc at all (-P and -G naming files elsewhere)
            self.fail(f"Error locking files: {P.strerror(e)}\n", 4)

    # -- main -----------------------------------------------------------------------------

    def main(self) -> int:
        """``main`` of update-passwd.c; the exit status."""
        self.options()
        if self.inv.env.get("DEBIAN_HAS_FRONTEND") is not None and not self.dryrun:
            self.debconf = Debconf(self.inv)
        master_users = self._read("passwd", self.master_passwd)
        master_groups = self._read("group", self.master_group)
        users = self._read("passwd", self.sys_passwd)
        shadow = self._read("shadow", self.sys_shadow, shadow=True)
        groups = self._read("group", self.sys_group)
        try:
            self.new_entries(SPECIAL_GROUPS, groups, master_groups, b"group")
            self.old_entries(SPECIAL_GROUPS, groups, master_groups, b"group")
            self.changed_groups(groups, master_groups)
            self.new_entries(SPECIAL_USERS, users, master_users, b"user")
            self.old_entries(SPECIAL_USERS, users, master_users, b"user")
            self.changed_accounts(users, groups, master_users)
        except _Failed:
            self.fail("Debconf interaction failed\n", 1)
        if self.sanity:
            return 0
        if not self.nolock and not self.dryrun:
            self.lock()
        self.commit(users, shadow, groups)
        return self.dirty & 0xFF if self.dryrun else 0


@all_or_nothing
def update_passwd(inv: Invocation) -> int:
    """``update-passwd [-n] [-v] [-s] [-L] [-p F] [-g F] [-P F] [-S F] [-G F]`` (base-passwd 3.6.1)."""
    try:
        return UpdatePasswd(inv).main()
    except _Exit as e:
        return e.status
