"""``dpkg-trigger`` (dpkg 1.21.22): record a trigger activation in ``triggers/Unincorp``.

Mirrors ``src/trigger/main.c`` and ``lib/dpkg/trigdeferred.c``: ``dpkg-trigger [--await |
--no-await] [--by-package PKG] [--no-act] NAME`` and ``--check-supported``. The awaiting
package defaults to ``DPKG_MAINTSCRIPT_PACKAGE``/``DPKG_MAINTSCRIPT_ARCH`` (outside a
maintainer script, without ``--by-package``, it is a usage error); ``--no-await`` records
``-``. The activation is written only when ``Unincorp`` exists (dpkg creates it): the file is
rewritten through ``Unincorp.new`` by :meth:`nuwa.deb.triggers.TriggerState.defer`, and
``triggers/Lock`` is created (mode 0600) as the real program's lock does. dpkg incorporates
the record into the status file the next time it runs (``nuwa.deb.configure`` does the same).
"""

from __future__ import annotations

from nuwa.deb.triggers import TriggerState
from nuwa.errors import CorruptImageError
from nuwa.script.commands.dpkg.common import (
    DpkgExit, Opt, Tool, arch_name_is_illegal, pkg_name_is_illegal, trig_name_is_illegal,
)
from nuwa.script.context import Defer, Invocation

HINT = "Type dpkg-trigger --help for help about this utility."

OPTS = [
    Opt("check-supported", None, 0, "check-supported", True), Opt("help", "?", 0, "help", True),
    Opt("version", None, 0, "version", True), Opt("admindir", None, 1, "admindir"), Opt("root", None, 1, "root"),
    Opt("by-package", "f", 1, "by-package"), Opt("await", None, 0, "await"), Opt("no-await", None, 0, "no-await"),
    Opt("no-act", None, 0, "no-act"),
]


def _pkg_error(name: str, arch: str | None) -> str | None:
    """``pkg_spec_is_illegal`` for a name and an optional architecture."""
    e = pkg_name_is_illegal(name)
    if e:
        spec = f"{name}:{arch}" if arch is not None else name
        return f"illegal package name in specifier '{spec}': {e}"
    if arch is not None and (arch == "" or arch_name_is_illegal(arch)):
        return f"illegal architecture name in specifier '{name}:{arch}': {arch_name_is_illegal(arch)}"
    return None


class Trigger:
    """One run of dpkg-trigger."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.tool = Tool(inv, "dpkg-trigger", HINT)
        self.bypackage: str | None = None
        self.await_ = True
        self.noact = False

    def set_option(self, o: Opt, v) -> None:
        if o.key == "by-package":
            self.bypackage = v
        elif o.key == "await":
            self.await_ = True
        elif o.key == "no-await":
            self.await_ = False
        elif o.key == "no-act":
            self.noact = True

    def run(self) -> int:
        t = self.tool
        rest = t.parse(self.inv.argv[1:], OPTS, self.set_option)
        key = t.action.key if t.action else "trigger"
        if key == "check-supported":
            if rest:
                t.badusage("--check-supported takes no arguments")
            d = t.image_admindir() + "/triggers"
            # without TDUF_WRITE no lock is taken, so a missing directory reads as no records
            if not self.tool.fs.exists(d + "/Unincorp"):
                t.notice("trigger records not yet in existence")
                return 1
            return 0
        if key != "trigger":
            raise Defer(f"dpkg-trigger --{key} is not modelled")
        return self.trigger(rest)

    def awaiter(self) -> tuple[str, str | None]:
        """``parse_awaiter_package``: (name to record, error)."""
        t = self.tool
        if not self.await_:
            return "-", None
        if self.bypackage is None:
            name = self.inv.env.get("DPKG_MAINTSCRIPT_PACKAGE")
            arch = self.inv.env.get("DPKG_MAINTSCRIPT_ARCH")
            if name is None or arch is None:
                t.badusage("must be called from a maintainer script (or with a --by-package option)")
            self.bypackage = name
            err = _pkg_error(name, arch if arch != "" else "")
            if err:
                return name, err
            return self.normalise(name, arch), None
        if self.bypackage == "-":
            return "-", None
        name, sep, arch = self.bypackage.partition(":")
        err = _pkg_error(name, arch if sep else None)
        if err:
            return self.bypackage, err
        return self.normalise(name, arch if sep else None), None

    def normalise(self, name: str, arch: str | None) -> str:
        """``pkg_name(pkg, pnaw_same)`` of a package looked up without the status database.

        dpkg-trigger never opens the database, so the instance is a blank one (not
        Multi-Arch: same): the name, in the lower case dpkg's package hash gives it.
        """
        return name.lower()

    def trigger(self, args: list[str]) -> int:
        t = self.tool
        if len(args) != 1:
            t.badusage("takes one argument, the trigger name")
        aw, err = self.awaiter()
        if err:
            t.badusage(f"illegal awaited package name '{self.bypackage if self.await_ else '-'}': {err}")
        name = args[0]
        e = trig_name_is_illegal(name)
        if e:
            t.badusage(f"invalid trigger name '{name}': {e}")
        fs = t.fs
        d = t.image_admindir() + "/triggers"
        if not self.noact:
            try:
                if not fs.exists(d + "/Lock"):
                    fs.write_bytes(d + "/Lock", b"", 0o600)
            except FileNotFoundError:
                return 0  # TDUS_ERROR_NO_DIR: no triggers directory, nothing recorded
            except OSError as ex:
                t.error(f"unable to open/create triggers lock file '{t.admindir}/triggers/Lock': {ex.strerror}")
        if not fs.exists(d + "/Unincorp"):
            return 0  # TDUS_ERROR_NO_DEFERRED: dpkg has not created the file yet
        if self.noact:
            # dpkg 1.21.22 crashes here (it parses Unincorp and prints into a file it never
            # opened); nothing is written either way, which is what --no-act asks for
            return 0
        try:
            st = TriggerState.load(fs, t.image_admindir())
        except CorruptImageError as ex:
            raise Defer(f"dpkg-trigger: the triggers directory cannot be read ({ex})") from None
        st.defer(name, aw)
        st.save()
        return 0


def dpkg_trigger(inv: Invocation) -> int:
    """The ``dpkg-trigger`` model."""
    try:
        return Trigger(inv).run()
    except DpkgExit as e:
        return e.status
