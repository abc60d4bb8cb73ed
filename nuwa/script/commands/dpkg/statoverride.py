"""``dpkg-statoverride`` (dpkg 1.21.22): --add, --remove, --list, with --update and --force-*.

Mirrors ``src/statoverride/main.c`` and ``lib/dpkg/db-fsys-override.c``: user and group are
names or ``#ID`` (names resolved with the *image's* /etc/passwd and /etc/group, as the real
program would inside the machine), the mode is octal up to 07777; an existing override is
refused unless ``--force-statoverride-add``; removing a missing one warns and exits 2 unless
``--force-statoverride-remove``; ``--update`` applies owner and mode to an existing file.
The file is read leniently (unknown names are kept as written) and rewritten in dpkg's
file-name hash order, each entry printed with the name its id has in the image, through
``statoverride-new`` with ``statoverride-old`` kept (:func:`nuwa.deb.diversions.atomic_save`).
"""

from __future__ import annotations

from nuwa.deb.diversions import atomic_save
from nuwa.deb.statoverride import StatOverride, StatOverrides
from nuwa.errors import CorruptImageError
from nuwa.script.commands.dpkg.common import DpkgExit, Opt, Tool, trim_slash_slashdot
from nuwa.script.commands.dpkg.query import FSYS_BINS, fnv_hash, node_name
from nuwa.script.context import Defer, Invocation
from nuwa.script.expand import match

HINT = "Use --help for help about overriding file stat information."

OPTS = [
    Opt("add", None, 0, "add", True), Opt("remove", None, 0, "remove", True), Opt("list", None, 0, "list", True),
    Opt("help", "?", 0, "help", True), Opt("version", None, 0, "version", True),
    Opt("admindir", None, 1, "admindir"), Opt("instdir", None, 1, "instdir"), Opt("root", None, 1, "root"),
    Opt("quiet", None, 0, "quiet"), Opt("force", None, 0, "force-obsolete"), Opt("force", None, 2, "force"),
    Opt("no-force", None, 2, "no-force"), Opt("refuse", None, 2, "refuse"), Opt("update", None, 0, "update"),
]

#: dpkg's force names (src/common/force.c); only the statoverride ones change this program
FORCE_NAMES = ("all", "security-mac", "downgrade", "configure-any", "hold", "not-root", "bad-path", "bad-verify",
               "bad-version", "statoverride-add", "statoverride-remove", "overwrite", "overwrite-diverted",
               "overwrite-dir", "unsafe-io", "script-chrootless", "confnew", "confold", "confdef", "confmiss",
               "confask", "architecture", "breaks", "conflicts", "depends", "depends-version",
               "remove-reinstreq", "remove-protected", "remove-essential")


def _db_entries(text: str) -> list[tuple[str, str]]:
    """``name -> id`` pairs of a passwd/group file in file order (getpwuid answers the first)."""
    out = []
    for ln in text.splitlines():
        parts = ln.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            out.append((parts[0], parts[2]))
    return out


class StatOverride_:
    """One run of dpkg-statoverride."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.tool = Tool(inv, "dpkg-statoverride", HINT)
        self.verbose = True
        self.update = False
        self.force = {"statoverride-add": False, "statoverride-remove": False}

    def set_option(self, o: Opt, v) -> None:
        if o.key == "quiet":
            self.verbose = False
        elif o.key == "update":
            self.update = True
        elif o.key == "force-obsolete":
            self.tool.warning("deprecated --force option; use --force-all instead")
            self.force = {k: True for k in self.force}
        else:
            on = o.key == "force"
            if v == "help":
                raise Defer("dpkg-statoverride --force-help is not modelled")
            for name in v.split(","):
                if name not in FORCE_NAMES:
                    self.tool.badusage(f"unknown force/refuse option '{name[:250]}'")
                if name == "all":
                    self.force = {k: on for k in self.force}
                elif name in self.force:
                    self.force[name] = on

    # ---- names --------------------------------------------------------------------------------
    def ids(self, which: str) -> list[tuple[str, str]]:
        try:
            return _db_entries(self.tool.fs.read_bytes(f"/etc/{which}").decode("utf-8", "replace"))
        except FileNotFoundError:
            return []

    def parse_id(self, text: str, which: str) -> int | None:
        """``statdb_parse_uid``/``gid``: ``#N`` or a name (None: no such name)."""
        if text.startswith("#"):
            digits = text[1:]
            if not digits.isdigit():
                self.tool.error(f"invalid statoverride {'uid' if which == 'passwd' else 'gid'} {text}")
            return int(digits)
        for n, i in self.ids(which):
            if n == text:
                return int(i)
        return None

    def name_of(self, num: int | None, written: str, which: str) -> str:
        """``statdb_node_print``: the image's name for the id, else as written, else ``#ID``."""
        if num is not None:
            for n, i in self.ids(which):
                if int(i) == num:
                    return n
            return f"#{num}"
        return written

    def render(self, o: StatOverride) -> str:
        return (f"{self.name_of(o.uid, o.user, 'passwd')} {self.name_of(o.gid, o.group, 'group')} "
                f"{o.mode & 0o7777:o} {o.path}\n")

    # ---- database -----------------------------------------------------------------------------
    def load(self) -> StatOverrides:
        try:
            so = StatOverrides.load(self.tool.fs, self.tool.image_admindir(), lax=True)
        except CorruptImageError as e:
            raise Defer(f"dpkg-statoverride: cannot read the statoverride file ({e})") from None
        # names are looked up by ``statdb_parse_uid``, which also accepts "#N"
        self.order = [node_name(p) for p in so.items]
        return so

    def ordered(self, so: StatOverrides) -> list[StatOverride]:
        first = {n: i for i, n in reversed(list(enumerate(self.order)))}
        return sorted(so.items.values(), key=lambda o: (fnv_hash(o.path[1:]) % FSYS_BINS, first.get(o.path, 1 << 30)))

    def save(self, so: StatOverrides) -> None:
        text = "".join(self.render(o) for o in self.ordered(so))
        atomic_save(self.tool.fs, self.tool.image_admindir() + "/statoverride", text.encode("utf-8", "surrogateescape"))

    def cleanup(self, path: str) -> str:
        new = trim_slash_slashdot(path)
        if self.verbose and new != path:
            self.tool.warning("stripping trailing /")
        return new

    # ---- actions ------------------------------------------------------------------------------
    def run(self) -> int:
        t = self.tool
        rest = t.parse(self.inv.argv[1:], OPTS, self.set_option)
        if t.action is None:
            t.badusage("need an action option")
        if t.action.key in ("help", "version"):
            raise Defer(f"dpkg-statoverride --{t.action.key} is not modelled")
        return getattr(self, "act_" + t.action.key)(rest)

    def act_add(self, args: list[str]) -> int:
        t = self.tool
        if len(args) != 4:
            t.badusage("--add needs four arguments")
        user, group, mode, path = args
        if "\n" in path:
            t.badusage("path may not contain newlines")
        so = self.load()
        filename = node_name(self.cleanup(path))
        if filename in so.items:
            if self.force["statoverride-add"]:
                t.warning(f"an override for '{self.cleanup_shown(path)}' already exists, but --force specified so will be ignored")
            else:
                t.error(f"an override for '{self.cleanup_shown(path)}' already exists; aborting")
        uid = self.parse_id(user, "passwd")
        if uid is None:
            t.error(f"user '{user}' does not exist")
        gid = self.parse_id(group, "group")
        if gid is None:
            t.error(f"group '{group}' does not exist")
        m = _parse_mode(mode)
        if m is None:
            t.error(f"invalid statoverride mode {mode}")
        self.order.append(filename)
        so.items[filename] = StatOverride(user, group, m, filename, uid, gid)
        if self.update:
            real = t.root_path(self.cleanup_shown(path)) if t.instdir else self.cleanup_shown(path)
            try:
                t.fs.stat(real)
                exists = True
            except OSError:
                exists = False
            if exists:
                try:
                    t.fs.chown(real, uid, gid)
                except OSError as e:
                    t.error(f"error setting ownership of '{real[:255]}': {e.strerror}")
                try:
                    t.fs.chmod(real, m & 0o7777)
                except OSError as e:
                    t.error(f"error setting permissions of '{real[:255]}': {e.strerror}")
            elif self.verbose:
                t.warning(f"--update given but {t.instdir}{self.cleanup_shown(path)} does not exist")
        self.save(so)
        return 0

    def cleanup_shown(self, path: str) -> str:
        return trim_slash_slashdot(path)

    def act_remove(self, args: list[str]) -> int:
        t = self.tool
        if len(args) != 1:
            t.badusage("--remove needs a single argument")
        so = self.load()
        filename = node_name(self.cleanup(args[0]))
        if filename not in so.items:
            if self.verbose:
                t.warning("no override present")
            return 0 if self.force["statoverride-remove"] else 2
        if self.update and self.verbose:
            t.warning("--update is useless for --remove")
        del so.items[filename]
        self.save(so)
        return 0

    def act_list(self, args: list[str]) -> int:
        so = self.load()
        pats = [self.cleanup(a) for a in args] or ["*"]
        ret = 1
        for o in self.ordered(so):
            if any(match(p, o.path) for p in pats):
                self.tool.out(self.render(o))
                ret = 0
        return ret


def _parse_mode(text: str) -> int | None:
    """``statdb_parse_mode``: ``strtol(s, 8)`` with nothing left over, 0..07777."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = 1
    if s[:1] in ("+", "-"):
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if not s or any(c not in "01234567" for c in s):
        return None
    v = sign * int(s, 8)
    return v if 0 <= v <= 0o7777 else None


def dpkg_statoverride(inv: Invocation) -> int:
    """The ``dpkg-statoverride`` model."""
    try:
        return StatOverride_(inv).run()
    except DpkgExit as e:
        return e.status
