"""What dpkg's C helper programs share: option parsing, messages, directories, name checks.

dpkg, dpkg-query, dpkg-divert, dpkg-statoverride and dpkg-trigger all parse their command
line with ``lib/dpkg/options.c`` (``dpkg_options_parse``): options come first and stop at the
first operand or ``--``; long options match exactly, or as ``--name=value`` (``--name-value``
for the "takes a suffix" kind such as ``--force-...`` and ``--assert-...``); no abbreviations,
no permutation. Errors are printed by ``lib/dpkg/report.c``/``ehandle.c``: ``PROG: error: MSG``
(exit 2), ``PROG: warning: MSG``, ``PROG: MSG`` (notice); a usage error adds a blank line and
the program's "use --help" hint.

Directories follow ``lib/dpkg/fsys-dir.c`` and ``dbdir.c``: ``--root`` (or ``DPKG_ROOT``)
is the installation directory, ``--admindir`` (or ``DPKG_ADMINDIR``, else ROOT/var/lib/dpkg)
the database. Inside an image both are image paths: an empty root is the image root.
"""

from __future__ import annotations

from dataclasses import dataclass

from nuwa.script.context import Defer, Invocation

ADMINDIR = "/var/lib/dpkg"


class DpkgExit(Exception):
    """Ends the program with ``status`` (its messages are already written)."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


@dataclass
class Opt:
    """One entry of a ``cmdinfo`` table.

    ``takes``: 0 no value, 1 a value (``--x=V``, ``--x V``, ``-xV``, ``-x V``), 2 a suffix
    (``--force-things``, or ``--force things``). ``action``: selecting it sets the action.
    """

    long: str | None
    short: str | None
    takes: int
    key: str
    action: bool = False


class Tool:
    """One run of a dpkg program against the image: messages, exit, directories."""

    def __init__(self, inv: Invocation, progname: str, hint: str):
        self.inv = inv
        self.fs = inv.fs
        self.prog = progname
        self.hint = hint
        root = inv.env.get("DPKG_ROOT")
        self.instdir = _trim(root) if root is not None else ""
        self._admindir_set: str | None = None
        self.action: Opt | None = None
        self.action_value: str | None = None

    # ---- messages ---------------------------------------------------------------------------
    def out(self, text: str) -> None:
        self.inv.out(text)

    def error(self, msg: str) -> "DpkgExit":
        """``ohshit``: print and raise (exit 2)."""
        self.inv.err(f"{self.prog}: error: {msg}\n")
        raise DpkgExit(2)

    def badusage(self, msg: str) -> "DpkgExit":
        """``badusage``: the message, a blank line and the help hint (exit 2)."""
        return self.error(f"{msg}\n\n{self.hint}")

    def warning(self, msg: str) -> None:
        self.inv.err(f"{self.prog}: warning: {msg}\n")

    def notice(self, msg: str) -> None:
        self.inv.err(f"{self.prog}: {msg}\n")

    # ---- directories ------------------------------------------------------------------------
    def set_root(self, value: str) -> None:
        """``--root``: also resets the admin directory to ROOT/var/lib/dpkg."""
        self.instdir = _trim(value)
        self._admindir_set = self.instdir + ADMINDIR

    def set_instdir(self, value: str) -> None:
        self.admindir  # noqa: B018  (dpkg fixes the database directory before the root moves)
        self.instdir = _trim(value)

    def set_admindir(self, value: str) -> None:
        self._admindir_set = value

    @property
    def admindir(self) -> str:
        """The database directory as the program sees it (an image path)."""
        if self._admindir_set is None:
            env = self.inv.env.get("DPKG_ADMINDIR")
            self._admindir_set = env if env is not None else self.instdir + ADMINDIR
        return self._admindir_set

    def image_admindir(self) -> str:
        """The admin directory as a path of the filesystem model."""
        a = self.admindir
        if not a.startswith("/"):
            a = self.inv.path(a)
        return a.rstrip("/") or "/"

    def root_path(self, path: str) -> str:
        """A path of the installation as a path of the filesystem model (``dpkg_fsys_get_path``)."""
        p = path.lstrip("/")
        while p.startswith("./"):
            p = p[2:].lstrip("/")
        base = self.instdir if self.instdir.startswith("/") or not self.instdir else self.inv.path(self.instdir)
        return (base.rstrip("/") + "/" + p) if p else (base or "/")

    # ---- option parsing ---------------------------------------------------------------------
    def parse(self, args: list[str], table: list[Opt], setter) -> list[str]:
        """``dpkg_options_parse``: calls ``setter(opt, value)`` per option; returns operands."""
        i = 0
        while i < len(args) and args[i].startswith("-") and args[i] != "-":
            p = args[i]
            i += 1
            if p == "--":
                break
            if p.startswith("--"):
                name = p[2:]
                value = None
                found = None
                for o in table:
                    if not o.long:
                        continue
                    if name == o.long:
                        found = o
                        break
                    sep = "-" if o.takes == 2 else "="
                    if name.startswith(o.long + sep):
                        found, value = o, name[len(o.long) + 1:]
                        break
                if found is None:
                    self.badusage(f"unknown option --{name}")
                if found.takes:
                    if value is None:
                        if i >= len(args):
                            self.badusage(f"--{found.long} option takes a value")
                        value = args[i]
                        i += 1
                elif value is not None:
                    self.badusage(f"--{found.long} option does not take a value")
                self._apply(found, value, setter)
                continue
            j = 1
            while j < len(p):
                c = p[j]
                j += 1
                found = next((o for o in table if o.short == c), None)
                if found is None:
                    self.badusage(f"unknown option -{c}")
                if found.takes:
                    if j >= len(p):
                        if i >= len(args):
                            self.badusage(f"-{c} option takes a value")
                        value = args[i]
                        i += 1
                    else:
                        value = p[j:]
                        if value.startswith("="):
                            value = value[1:]
                        j = len(p)
                    self._apply(found, value, setter)
                else:
                    if p[j:j + 1] == "=":
                        self.badusage(f"-{c} option does not take a value")
                    self._apply(found, None, setter)
        return args[i:]

    def _apply(self, o: Opt, value: str | None, setter) -> None:
        if o.action:
            if self.action is not None:
                a = self.action
                self.badusage(f"conflicting actions -{o.short or chr(8)} (--{o.long}) and "
                              f"-{a.short or chr(8)} (--{a.long})")
            self.action, self.action_value = o, value
            return
        if o.key == "root":
            self.set_root(value)
        elif o.key == "admindir":
            self.set_admindir(value)
        elif o.key == "instdir":
            self.set_instdir(value)
        else:
            setter(o, value)


def run_tool(tool_factory, inv: Invocation) -> int:
    """Run a program body, turning :class:`DpkgExit` into its status."""
    try:
        return tool_factory()
    except DpkgExit as e:
        return e.status


def trim_slash_slashdot(path: str) -> str:
    """``path_trim_slash_slashdot``: drop trailing ``/`` and ``/.`` (keeping the first character)."""
    s = list(path)
    end = len(s) - 1
    while end >= 1:
        if s[end] == "/" or (s[end - 1] == "/" and s[end] == "."):
            s[end] = ""
            end -= 1
        else:
            break
    return "".join(s)


def _trim(root: str) -> str:
    """A root directory as a prefix: ``/`` and ``""`` are the image root itself."""
    r = trim_slash_slashdot(root)
    return "" if r == "/" else r


def is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def pkg_name_is_illegal(name: str) -> str | None:
    """``pkg_name_is_illegal`` (lib/dpkg/parsehelp.c)."""
    if not name:
        return "may not be empty string"
    if not is_alnum(name[0]):
        return "must start with an alphanumeric character"
    for c in name:
        if not is_alnum(c) and c not in "-+._":
            return f"character '{c}' not allowed (only letters, digits and characters '-+._')"
    return None


def arch_name_is_illegal(name: str) -> str | None:
    """``dpkg_arch_name_is_illegal`` (lib/dpkg/arch.c)."""
    if not name:
        return "may not be empty string"
    if not is_alnum(name[0]):
        return "must start with an alphanumeric"
    for c in name[1:]:
        if not is_alnum(c) and c != "-":
            return f"character '{c}' not allowed (only letters, digits and characters '-')"
    return None


def trig_name_is_illegal(name: str) -> str | None:
    """``trig_name_is_illegal`` (lib/dpkg/trigname.c)."""
    if not name:
        return "empty trigger names are not permitted"
    for b in name.encode("utf-8", "surrogateescape"):
        if b <= 0x20 or b >= 0o177:
            return "trigger name contains invalid character"
    return None


def defer_unmodelled(what: str) -> None:
    """Raise :class:`Defer` for an action that changes packages or needs a running system."""
    raise Defer(what)
