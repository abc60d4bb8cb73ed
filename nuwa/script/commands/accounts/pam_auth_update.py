"""``pam-auth-update`` (libpam-runtime 1.5.2, Debian 12): /etc/pam.d/common-* from profiles.

The real program is Perl (``/usr/sbin/pam-auth-update``); this model follows it function by
function (``parse_pam_profile``, ``diff_profiles``, ``get_template_md5sum``,
``create_from_template``, ``merge_one_line``, ``write_profiles``) over bytes, with Perl's
regular expressions written as ``re`` bytes patterns (ASCII ``\\s``/``\\w``, as Perl's on
byte strings). It speaks the debconf protocol as ``Debconf::Client::ConfModule`` does:

- under a running frontend (``DEBIAN_HAS_FRONTEND``, e.g. from libpam-runtime's postinst,
  which sourced the confmodule), to that frontend's :class:`ConfModule` (the one
  :mod:`nuwa.script.commands.debconf.frontend` registers in ``Invocation.state``): the same
  connection the real program inherits on fd 3 and stdin;
- otherwise it execs debconf's frontend with itself as the confmodule, as the Perl module's
  ``import`` does: :class:`~nuwa.script.commands.debconf.frontend.FrontendRun` with this model
  as the child (databases loaded, then saved when it ends).

What the real program would do only with Perl warnings or undefined behaviour on stderr (a
profile field used but absent, a non-numeric ``Priority``, a line before the first field, a
module line that is not ``CONTROL MODULE [ARGS]``, no profile enabled at all, which makes
the real program loop for ever) is deferred with the reason, before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re

from nuwa.script.commands.debconf.confmodule import ConfModule
from nuwa.script.commands.debconf.db import ENC, ERRORS
from nuwa.script.commands.debconf.frontend import CONFMODULES, FrontendRun
from nuwa.script.context import Defer, Invocation

PROG = "/usr/sbin/pam-auth-update"
TYPES = ("auth", "account", "password", "session", "session-noninteractive")
TEMPLATE = "libpam-runtime/profiles"
ERRTEMPLATE = "libpam-runtime/conflicts"
OVERRIDE = "libpam-runtime/override"
BLANK = "libpam-runtime/no_profiles_chosen"
TITLE = "libpam-runtime/title"
#: the md5sums of the stock boilerplate (``%md5sums`` of the program)
MD5SUMS = {
    "auth": ["8d4fe17e66ba25de16a117035d1396aa"],
    "account": ["3c0c362eaf3421848b679d63fd48c3fa"],
    "password": ["4d5c92d595a46b69cd61f18feb4c0574", "50fce2113dfda83ac8bdd5a6e706caec",
                 "4bd7610f2e85f8ddaef79c7db7cb49eb", "9ba753d0824276b44bcadfee1f87b6bc"],
    "session": ["f297c731a467822cbd86e1283263e8a3", "240fb92986c885b327cdb21dd641da8c",
                "4a25673e8b36f1805219027d3be02cd2"],
    "session-noninteractive": ["ad2b78ce1498dd637ef36469430b6ac6"],
}
PRIMARY = re.compile(rb'^# here are the per-package modules \(the "Primary" block\)')
FALLBACK = re.compile(rb"^# here's the fallback if no module succeeds")
ADDITIONAL = re.compile(rb'^# and here are more per-package modules \(the "Additional" block\)')
END = re.compile(rb"^# end of pam-auth-update config")
MODLINE = re.compile(rb"^((\[[^]]+\]|\w+)\s+\S+)\s*(.*)")
JUMPS = re.compile(rb"(\[[^0-9]*)[0-9]+(.*\])")
ENDJUMP = re.compile(rb"(\[.*)end(.*\])")
NUMBER = re.compile(rb"^[+-]?[0-9]+(\.[0-9]*)?$")


def _lines(data: bytes) -> list[bytes]:
    """Perl's ``<FH>``: lines with their newline, the last one possibly without."""
    return re.findall(rb"[^\n]*\n|[^\n]+", data)


def _template_lines(data: bytes) -> tuple[list[tuple[bytes, bytes | None]], bool]:
    """The lines of a ``common-*`` template outside its two managed blocks, as both of the
    program's template walks see them (``create_from_template``, ``get_template_md5sum``):
    ``(line, marker)`` with marker ``b"Primary"``/``b"Additional"`` on the line that opens a
    block (its contents, up to the fallback or end marker, are left out), else None; and
    whether all four markers were found."""
    parts: list[tuple[bytes, bytes | None]] = []
    state = 0
    for line in _lines(data):
        if state in (1, 3):  # inside a managed block: only its closing marker is kept
            if (FALLBACK if state == 1 else END).match(line):
                parts.append((line, None))
                state += 1
            continue
        opener = PRIMARY if state == 0 else ADDITIONAL if state == 2 else None
        if opener is not None and opener.match(line):
            parts.append((line, b"Primary" if state == 0 else b"Additional"))
            state += 1
        else:
            parts.append((line, None))
    return parts, state >= 4


def _chomp(b: bytes) -> bytes:
    return b[:-1] if b.endswith(b"\n") else b


def _split_perl(sep: bytes, s: bytes | None) -> list[bytes]:
    """``split(/SEP/, S)``: trailing empty fields dropped, an empty string gives nothing."""
    if not s:
        return []
    out = s.split(sep)
    while out and out[-1] == b"":
        out.pop()
    return out


def _split_perl_ws(s: bytes) -> list[bytes]:
    """``split(/\\s+/, S)`` on a string without leading whitespace (ASCII whitespace, as Perl's)."""
    return s.split()


def _true(v) -> bool:
    """Perl truth of a string: undef, "" and "0" are false."""
    return v is not None and v != b"" and v != b"0"


class Client:
    """``Debconf::Client::ConfModule``: one line out, one reply line in, per command."""

    def __init__(self, cm: ConfModule):
        self.cm = cm
        #: reply lines read so far: Perl's ``$.`` of STDIN, which ``die`` messages name
        self.lines_read = 0

    def __call__(self, command: str, *args: bytes | str) -> bytes | None:
        words = [a.decode(ENC, ERRORS) if isinstance(a, bytes) else a for a in args]
        line = " ".join([command.upper()] + words)
        if "\n" in line:
            raise Defer(f"a newline in the debconf command {command.upper()} (Perl warns and the "
                        "protocol desynchronises)")
        ret = self.cm.handle(line)
        self.lines_read += 1
        parts = re.split(r"\s", ret, maxsplit=1)
        if parts[0] == "1" and len(parts) > 1:  # escaped data
            parts = ["0", "".join(re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), c)
                                  for c in re.split(r"(\\.)", parts[1]))]
        return parts[1].encode(ENC, ERRORS) if len(parts) > 1 else None


class Refused(Exception):
    """``die`` in the real program: the message (without Perl's ``at LINE``) to defer with."""


class PamAuthUpdate:
    """One run of the program against the image (see the module documentation)."""

    def __init__(self, inv: Invocation, argv: list[str]):
        self.inv = inv
        self.fs = inv.fs
        self.force = self.package = False
        self.removals: set[bytes] = set()
        self.to_disable: list[bytes] = []
        self.to_enable: set[bytes] = set()
        root = ""
        args = [a.encode(ENC, ERRORS) for a in argv]
        i = 0
        while i < len(args):  # the program's own loop: anything else is ignored
            opt = args[i]
            i += 1
            if opt == b"--force":
                self.force = True
            elif opt == b"--package":
                self.package = True
            elif opt == b"--root":
                if i >= len(args):
                    raise Defer("pam-auth-update --root without a directory (Perl warns)")
                root = args[i].decode(ENC, ERRORS)
                i += 1
            elif opt in (b"--remove", b"--disable", b"--enable"):
                names = []
                while i < len(args) and not args[i].startswith(b"--"):
                    names.append(args[i])
                    i += 1
                if opt == b"--remove":
                    self.removals |= set(names)
                elif opt == b"--disable":
                    self.to_disable += [n for n in names if n not in self.to_disable]
                else:
                    self.to_enable |= set(names)
                if names:
                    self.package = True
        self.inputdir = root + "/usr/share/pam-configs"
        self.confdir = root + "/etc/pam.d"
        self.savedir = root + "/var/lib/pam"

    # ---- files ----------------------------------------------------------------------------
    def _read(self, path: str) -> bytes | None:
        try:
            st = self.fs.stat(path)
        except OSError:
            return None
        if not st.is_reg:
            raise Defer(f"pam-auth-update reads {path}, which is not a regular file")
        try:
            return self.fs.read_bytes(path)
        except OSError:
            return None

    def _write(self, path: str, data: bytes) -> None:
        """``open(F, "> path")`` under umask 022: an existing file keeps its mode and owner."""
        h = self.fs.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            if data:
                h.pwrite(0, data)
        finally:
            h.close()

    # ---- parse_pam_profile ----------------------------------------------------------------
    def parse_profile(self, name: bytes, data: bytes) -> dict:
        """``parse_pam_profile``: fields, continuation lines appended, Conflicts a set."""
        prof: dict = {}
        field = None
        where = f"{self.inputdir}/{name.decode(ENC, ERRORS)}"
        for line in _lines(data):
            m = re.match(rb"(\S+):\s+(.*)\s*$", line)
            if m:
                field = re.sub(rb"-Final$", b"", m.group(1))
                if field == b"Conflicts":
                    prof.setdefault(b"Conflicts", set()).update(_split_perl(b", ", m.group(2)) or [])
                else:
                    prof[field] = m.group(2)
                continue
            if field is None:
                raise Defer(f"{where} has a line before its first field (Perl warns)")
            if field == b"Conflicts":
                raise Defer(f"{where} continues its Conflicts field (Perl appends to a reference)")
            text = re.sub(rb"\s+$", b"", re.sub(rb"^\s+", b"", _chomp(line)))
            if _true(text):
                prof[field] = prof[field] + b"\n" + text
            if b"pam_tally" in prof[field]:  # @invalid_modules
                prof[b"disabled"] = b"1"
            prof[field] = re.sub(rb"^[\n\s]+", b"", prof[field])
        if b"Session-Interactive-Only" not in prof:
            for k in (b"-Type", b"", b"-Initial"):
                prof[b"Session-noninteractive" + k] = prof.get(b"Session" + k)
        return prof

    def load_profiles(self) -> dict:
        """Every profile of the config directory (backup names skipped), disabled ones left out."""
        try:
            names = self.fs.listdir(self.inputdir)
        except OSError:
            raise Defer(f"the program dies: could not open config directory {self.inputdir}") from None
        profiles = {}
        for n in names:
            b = n.encode(ENC, ERRORS)
            if b.endswith(b"~") or re.match(rb"^#.+#$", b):
                continue
            data = self._read(f"{self.inputdir}/{n}")
            if data is None:
                raise Defer(f"the program dies: could not read profile {self.inputdir}/{n}")
            p = self.parse_profile(b, data)
            if not _true(p.get(b"disabled")):
                profiles[b] = p
        return profiles

    def _priority(self, name: bytes) -> float:
        v = self.profiles[name].get(b"Priority")
        if v is None or not NUMBER.match(v):
            raise Defer(f"profile {name.decode(ENC, ERRORS)} has no numeric Priority (Perl warns "
                        "while sorting)")
        return float(v)

    def _sorted(self, names) -> list[bytes]:
        """``sort { Priority{b} <=> Priority{a} || $b cmp $a }``."""
        def cmp(a, b):
            pa, pb = self._priority(a), self._priority(b)
            if pa != pb:
                return -1 if pb < pa else 1
            return (b > a) - (b < a)
        return sorted(names, key=functools.cmp_to_key(cmp))

    # ---- diff_profiles --------------------------------------------------------------------
    def diff_profiles(self):
        """The local changes to the managed blocks against ``/var/lib/pam``; None: no merge."""
        diff: dict = {b"mods": []}
        for t in TYPES:
            saved_data = self._read(f"{self.savedir}/{t}")
            if saved_data is None:
                return None
            saved = []
            modname = None
            for line in _lines(saved_data):
                m = re.match(rb"Module: (.*)", line)
                if m:
                    modname = m.group(1)
                    continue
                line = ENDJUMP.sub(rb"\1\2", JUMPS.sub(rb"\1\2", _chomp(line)))
                saved.append((modname, line))
            cur = self._read(f"{self.confdir}/common-{t}")
            if cur is None:
                return None
            state = 0
            real = t.replace("-noninteractive", "", 1).encode()
            td = diff.setdefault(t.encode(), {})
            for line in _lines(cur):
                if state == 0:
                    if PRIMARY.match(line):
                        state = 1
                    continue
                if state == 1:
                    line = re.sub(rb"^" + real + rb"\s+", b"", line, count=1)
                    if FALLBACK.match(line):
                        state = 2
                        continue
                if state == 2:
                    if ADDITIONAL.match(line):
                        state = 3
                    continue
                if state == 3:
                    if END.match(line):
                        break
                    line = re.sub(rb"^" + real + rb"\s+", b"", line, count=1)
                found = False
                curopts = b""
                curmod = prev_opts = None
                while not found and saved:
                    modname, sline = saved.pop(0)
                    m = MODLINE.match(sline)
                    if m is None:
                        raise Defer(f"{self.savedir}/{t} has a line that is not 'CONTROL MODULE "
                                    "[ARGS]' (Perl reuses an earlier match)")
                    prev_opts = _split_perl_ws(m.group(3))
                    curmod = m.group(1)
                    line = JUMPS.sub(rb"\1\2", line)
                    mm = re.match(re.escape(curmod) + rb"\s*(.*)$", line)
                    if mm:
                        found = True
                        curopts = mm.group(1)
                        if modname is None:
                            raise Defer(f"{self.savedir}/{t} has a line before its first Module: "
                                        "(Perl warns)")
                        diff[b"mods"].append(modname)
                if not found:
                    return None
                for opt in _split_perl_ws(curopts):
                    hit = False
                    i = 0
                    while i < len(prev_opts):
                        if prev_opts[i] == opt:
                            hit = True
                            del prev_opts[i]
                        i += 1
                    if not hit:
                        td.setdefault(b"add", {}).setdefault(curmod, {})[opt] = 1
                for opt in prev_opts:
                    td.setdefault(b"remove", {}).setdefault(curmod, {})[opt] = 1
            if state < 3:
                return None
        return diff

    # ---- writing --------------------------------------------------------------------------
    def _lines_for(self, mod: bytes, uctype: bytes, pos: int, need: bool = True) -> bytes | None:
        """``lines_for_module_and_type``: the ``-Initial`` lines for the first of a block."""
        p = self.profiles[mod]
        if pos == 0 and _true(p.get(uctype + b"-Initial")):
            return p[uctype + b"-Initial"]
        out = p.get(uctype)
        if out is None and need:
            raise Defer(f"profile {mod.decode(ENC, ERRORS)} has {uctype.decode()}-Type but no "
                        f"{uctype.decode()} lines (Perl warns)")
        return out

    @staticmethod
    def merge_one_line(line: bytes, diff, count: int) -> bytes:
        """``merge_one_line``: a stock line with the admin's added and removed options."""
        m = MODLINE.match(line)
        if m is None:
            raise Defer(f"the profile line {line.decode(ENC, ERRORS)!r} is not 'CONTROL MODULE "
                        "[ARGS]' (Perl reuses an earlier match)")
        opts = _split_perl_ws(m.group(3))
        modline = m.group(1).replace(b"end", str(count).encode())
        adds: dict = {}
        removes: dict = {}
        if diff is not None:
            mod = JUMPS.sub(rb"\1\2", modline)
            # references into the diff (``\\%{...}``): what a line consumed stays consumed
            adds = diff.setdefault(b"add", {}).setdefault(mod, {})
            removes = diff.setdefault(b"remove", {}).setdefault(mod, {})
        i = 0
        while i < len(opts):
            if opts[i] in adds:
                del adds[opts[i]]
            if opts[i] in removes:
                del opts[i]
                i -= 1
            i += 1
        return modline + b" " + b" ".join(opts + sorted(adds)) + b"\n"

    def create_from_template(self, template: str, t: str, diff) -> bytes | None:
        """``create_from_template``: the new file's bytes, None when a marker is missing."""
        data = self._read(template)
        if data is None:
            return None
        uctype = t[0].upper().encode() + t[1:].encode()
        short = t.replace("-noninteractive", "", 1).encode()
        parts, complete = _template_lines(data)
        out = bytearray()
        for line, val in parts:
            out += line
            if val is None:
                continue
            mods = [m for m in self.enabled if _true(self.profiles[m].get(uctype + b"-Type"))
                    and self.profiles[m][uctype + b"-Type"] == val]
            count = sum(len(_split_perl(b"\n", re.sub(rb"\n+", b"\n", self._lines_for(m, uctype, i))))
                        for i, m in enumerate(mods))
            if val == b"Additional":
                count -= 1
            if val == b"Primary" and count == 0:
                out += short + b"\t[default=1]\t\t\tpam_permit.so\n"
            for i, m in enumerate(mods):
                for ln in _split_perl(b"\n", self._lines_for(m, uctype, i)):
                    out += short + b"\t" + self.merge_one_line(ln, diff, count)
                    count -= 1
        return bytes(out) if complete else None

    def template_md5(self, template: str) -> str:
        """``get_template_md5sum``: md5 of the file with the managed blocks left out."""
        data = self._read(template)
        if data is None:
            return ""
        return hashlib.md5(b"".join(line for line, _ in _template_lines(data)[0])).hexdigest()

    def saved_state(self, t: str) -> bytes:
        """What ``write_profiles`` stores in ``/var/lib/pam/TYPE``: the stock lines per module."""
        uctype = t[0].upper().encode() + t[1:].encode()
        out = bytearray()
        i = 0
        for skip in (b"Additional", b"Primary"):
            if skip == b"Primary":
                if i == 0:  # no primary block: a stock pam_permit line
                    out += b"Module: null\n[default=1]\t\t\tpam_permit.so\n"
                i = 0
            for m in self.enabled:
                ty = self.profiles[m].get(uctype + b"-Type")
                if not _true(ty) or ty == skip:
                    continue
                lines = self._lines_for(m, uctype, i, need=False)  # tested for truth only: no warning
                i += 1
                if _true(lines):
                    out += b"Module: " + m + b"\n" + lines + b"\n"
        return bytes(out)

    def write_profiles(self, diff) -> bool:
        """``write_profiles``: each type's new file, its saved state, then the renames."""
        fs = self.fs
        if not self._isdir(self.savedir):
            try:
                fs.mkdir(self.savedir, 0o755)
            except OSError:
                pass
        for t in TYPES:
            target = f"{self.confdir}/common-{t}"
            template = target
            tdiff = diff.setdefault(t.encode(), {}) if diff is not None else None
            if self.template_md5(template) in MD5SUMS[t]:
                template = f"/usr/share/pam/common-{t}"
            new = self.create_from_template(template, t, tdiff)
            if new is None:
                if not self.force:
                    return False
                new = self.create_from_template(f"/usr/share/pam/common-{t}", t, tdiff)
                if new is None:
                    return False
            saved = self.saved_state(t)
            try:
                self._write(target + ".pam-new", new)
            except OSError as e:
                raise Defer(f"pam-auth-update cannot write {target}.pam-new: {e.strerror}") from None
            try:
                self._write(f"{self.savedir}/{t}.new", saved)
            except OSError:
                fs.unlink(target + ".pam-new")
                return False
            if self.force and fs.exists(target):
                self._cp(target, target + ".pam-old")
            fs.rename(target + ".pam-new", target)
            fs.rename(f"{self.savedir}/{t}.new", f"{self.savedir}/{t}")
        self.db("fset", OVERRIDE, "seen", "false")
        self.db("set", OVERRIDE, "false")
        return True

    def _isdir(self, path: str) -> bool:
        try:
            return self.fs.stat(path).is_dir
        except OSError:
            return False

    def _cp(self, src: str, dst: str) -> None:
        """``cp -f SRC DST``: an existing DST keeps its mode; a new one gets SRC's, less umask 022."""
        data = self.fs.read_bytes(src)
        if not self.fs.exists(dst):
            mode = self.fs.stat(src).st_mode & 0o777 & ~0o022
            self._write(dst, b"")
            self.fs.chmod(dst, mode)
        self._write(dst, data)

    # ---- the program ----------------------------------------------------------------------
    def main(self, db: Client) -> int:
        """The program's main line, after ``version('2.0')``/``capb``."""
        self.db = db
        # every check that can defer comes before the first debconf command: a deferred run
        # must leave the running frontend's connection and databases as they were
        self.profiles = self.load_profiles()
        srt = [n for n in self._sorted(self.profiles) if n not in self.removals]
        names = []
        for n in srt:
            for field in (b"Name", b"Default"):
                if self.profiles[n].get(field) is None:
                    raise Defer(f"profile {n.decode(ENC, ERRORS)} has no {field.decode()} "
                                "(Perl warns)")
            names.append(self.profiles[n][b"Name"])
        db("version", "2.0")
        db("capb", "backup", "escape")
        priority = "medium" if self.package else "high"
        db("x_loadtemplatefile", "/var/lib/dpkg/info/libpam-runtime.templates", "libpam-runtime")
        db("subst", TEMPLATE, "profile_names", b", ".join(srt))
        db("subst", TEMPLATE, "profiles", b", ".join(names))
        diff = self.diff_profiles()
        if diff is not None:
            enabled = [m for m in diff[b"mods"] if m not in self.removals]
        else:
            enabled = _split_perl(b", ", db("get", TEMPLATE))
        seen: set[bytes] = set()
        sdata = self._read(self.savedir + "/seen")
        if sdata is not None:
            seen = {_chomp(x) for x in _lines(sdata)}
        enabled = [m for m in enabled if m in self.profiles]
        enabled += [m for m in srt if m in self.to_enable]
        enabled = [m for m in enabled if m not in self.to_disable]
        seen |= set(self.to_disable)
        if not enabled:
            seen = set()
            if not self.force:
                priority = "high"
        enabled += [m for m in srt if self.profiles[m][b"Default"] == b"yes" and m not in seen]
        enabled = self._sorted(enabled)
        enabled = [m for i, m in enumerate(enabled) if i == 0 or m != enabled[i - 1]]
        new = [m for m in srt if m not in seen]
        if not enabled:
            # a noninteractive frontend never gets another answer: the real program loops
            raise Defer("no profile is enabled and none is a default (the real program asks "
                        "again for ever without a terminal)")
        db("settitle", TITLE)
        force = self.force
        if diff is None and not force:
            db("input", "high", OVERRIDE)
            db("go")
            force = db("get", OVERRIDE) == b"true"
        if diff is None and not force:
            self.inv.err("\npam-auth-update: Local modifications to /etc/pam.d/common-*, not updating.\n"
                         "pam-auth-update: Run pam-auth-update --force to override.\n\n")
            return 0
        self.force = force
        while True:
            conflicts = []
            if new or not self.package:
                db("fset", TEMPLATE, "seen", "false")
            db("set", TEMPLATE, b", ".join(enabled))
            db("input", priority, TEMPLATE)
            db("go")
            enabled = _split_perl(b", ", db("get", TEMPLATE))
            k = 0
            while k < len(enabled):  # Perl's foreach over the array it splices
                elem = enabled[k]
                if elem not in self.profiles:
                    raise Defer(f"debconf selected {elem.decode(ENC, ERRORS)!r}, not a profile")
                for i in range(len(enabled) - 1, -1, -1):
                    if i >= len(enabled):
                        continue
                    c = enabled[i]
                    if c in self.profiles[elem].get(b"Conflicts", ()):
                        del enabled[i]
                        conflicts.append(self.profiles[elem].get(b"Name", b"") + b", " +
                                         self.profiles.get(c, {}).get(b"Name", b""))
                k += 1
            if conflicts:
                db("subst", ERRTEMPLATE, "conflicts", b"\\n".join(conflicts))
                db("input", "high", ERRTEMPLATE)
            db("set", TEMPLATE, b", ".join(enabled))
            if not enabled:
                # a noninteractive frontend never gets another answer: the real program loops
                raise Defer("no profile is enabled and none is a default (the real program asks "
                            "again for ever without a terminal)")
            if not conflicts:
                break
        self.enabled = enabled
        try:
            self._write(self.savedir + "/seen", b"".join(n + b"\n" for n in srt))
        except OSError as e:  # die(): its message with Perl's position, $! as the exit status
            self.inv.err(f"open({self.savedir}/seen) failed: {os.strerror(e.errno)} at {PROG} line 258, "
                         f"<STDIN> line {db.lines_read}.\n")
            return e.errno & 0xFF or 255
        self.write_profiles(diff)
        return 0


class _Frontend(FrontendRun):
    """debconf's frontend started by ``Debconf::Client::ConfModule``'s ``import``, its child
    this model rather than a script."""

    def __init__(self, inv: Invocation, program: PamAuthUpdate):
        super().__init__(inv)
        self.program = program

    def run_module(self, qs, fe, owner, argv) -> int:
        """The child: this model on a :class:`ConfModule` of this frontend, its exit status."""
        cm = ConfModule(qs, fe, owner, read_file=self.read)
        status = self.program.main(Client(cm))
        cm.finish()
        return status


def pam_auth_update(inv: Invocation) -> int:
    """``pam-auth-update [--package] [--force] [--remove|--enable|--disable PROFILE...] [--root DIR]``."""
    prog = PamAuthUpdate(inv, inv.argv[1:])
    if inv.env.get("DEBIAN_HAS_FRONTEND"):
        running = inv.state.get(CONFMODULES)
        if not running:
            raise Defer("DEBIAN_HAS_FRONTEND is set but no debconf frontend is running")
        return prog.main(Client(running[-1]))
    inv.env = dict(inv.env, PERL_DL_NONLAZY="1")  # set by the Perl module before it execs the frontend
    return _Frontend(inv, prog).run([PROG] + inv.argv[1:])
