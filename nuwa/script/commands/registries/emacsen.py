"""``emacs-package-install``, ``emacs-package-remove``, ``emacs-install`` and ``emacs-remove``
(emacsen-common 3.0.5, Debian 12).

Both are Perl scripts of ``/usr/lib/emacsen-common`` sharing ``lib.pl``; every Emacs add-on
package's postinst and prerm calls them (``--postinst PKG``, ``--prerm PKG``), and so do
emacsen-common's own. The models follow the scripts statement by statement:

- argument forms: ``--preinst PKG``/``--postinst PKG`` (install), ``--prerm PKG`` (remove),
  and the old one-argument form ``PKG``; anything else prints the usage line on stderr and
  exits 1. ``validate_add_on_pkg`` only complains ("ERROR: PKG is broken - ...") on stderr
  when the style of the call and the presence of ``packages/compat/PKG`` disagree;
- ``--preinst`` unlinks the package's state file ``state/package/installed/PKG`` (a missing
  one is fine); ``--postinst`` creates it with ``touch`` (run as a program, as ``ex`` does),
  then orders the package and the ready add-ons it depends on (``dpkg --status`` of each,
  its ``Depends`` filtered to installed add-ons, pairs fed to ``tsort``, with lib.pl's
  recursion that stops at the first package already seen) and runs
  ``packages/install/P FLAVOR`` for each installed flavor (``state/flavor/installed/*``),
  printing "Install P for FLAVOR" first; old-style packages (no compat file) get an
  ``emacs`` call first and the flavor list as extra arguments;
- ``--prerm`` runs ``packages/remove/PKG FLAVOR`` per flavor ("Remove PKG for FLAVOR"),
  then unlinks the state file;
- ``emacs-install FLAVOR`` (an Emacs flavor's postinst; ``--preinst``/``--postinst FLAVOR``)
  and ``emacs-remove FLAVOR`` (its prerm; ``--prerm FLAVOR``) do the same for one flavor and
  every ready add-on: ``state/flavor/installed/FLAVOR`` touched (the flavor list read before)
  or unlinked (after the remove scripts, which run in the reverse order). Their add-on order
  comes from Perl's hash order, random per run: see :func:`install_list`. These two are
  guarded by the SHA-256 of the script and of lib.pl; another text defers;
- ``glob_in_dir``: ``chdir`` then ``glob("*[!~]")``: no dot files, no names ending in ``~``,
  sorted as File::Glob's ``GLOB_ALPHASORT`` (bsd_glob ``ci_compare``: ASCII letters folded,
  bytes compared as signed chars, ties by ``strcmp``); a missing directory dies.

Programs the scripts start (``touch``, ``dpkg``, ``tsort``, the packages' scripts) run
through the interpreter's own lookup (``inv.run``) with the script's environment (it sets
``EMACS_INHIBIT_AUTOMATIC_NATIVE_COMPILATION=t``) and an empty standard input (the real
children share perl's: a divergence only for a package script that reads it), so a package
script that is a shell script is simulated and one that runs ``emacs`` (byte-compiling for an installed flavor) or
is not a shell script defers the whole call with the child's reason; the model is all or
nothing, so a deferral leaves the image as it was. ``die`` paths print Perl's message and
exit with ``$!`` where that is the errno of the failed call; deferred: a ``die`` whose
``$!`` is left over from unrelated calls (``dpkg --status`` failing, a failed ``touch`` or
old-style ``ex`` call), a caller's umask of 0 (``umask 0022 or die`` dies) or other than 022
(the children would inherit 022), and package names Perl's backticks would hand to a shell.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat as st

from nuwa.script.commands._common import content_sha256
from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.registries.perlish import b, s
from nuwa.script.context import Defer, Invocation

LIB_DIR = "/usr/lib/emacsen-common"
LIB_PL = LIB_DIR + "/lib.pl"
INSTALL = LIB_DIR + "/emacs-package-install"
REMOVE = LIB_DIR + "/emacs-package-remove"
VAR_DIR = "/var/lib/emacsen-common"
PACKAGE_STATE = VAR_DIR + "/state/package/installed"
FLAVOR_STATE = VAR_DIR + "/state/flavor/installed"

# Perl's do_exec3: a command string holding one of these goes to /bin/sh -c; otherwise it is
# split on white space. A package name with either is not what the script means to run.
_SHELL_META = re.compile(rb"[$&*(){}\[\]'\";\\|?<>~`\n\s]")


class _Die(Exception):
    """Perl's ``die``: the message is already on stderr; ``status`` is the exit status."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _die(r: "_Run", script: str, line: int, msg: str, errno: int) -> _Die:
    """``die "msg"`` without a final newline, ``$!`` being ``errno`` (non-zero): perl's
    ``my_failure_exit`` exits with ``$! & 255``."""
    r.inv.err(f"{msg} {r.at(script, line)}\n")
    return _Die(errno & 0xFF)


def _exists(inv: Invocation, path: str) -> bool:
    """Perl's ``-e`` (stat, following symlinks)."""
    try:
        inv.fs.stat(path)
    except (OSError, ValueError):
        return False
    return True


def _fold(c: int) -> int:
    """bsd_glob ``toFOLD`` of a ``char``: ASCII upper case to lower; x86-64's chars are
    signed, so bytes from 0x80 compare below every ASCII byte and below the NUL that ends
    a shorter name."""
    if 0x41 <= c <= 0x5A:
        return c + 0x20
    return c - 256 if c >= 0x80 else c


def _alphasort_key(name: str) -> tuple:
    """File::Glob's ``GLOB_ALPHASORT`` order (bsd_glob.c ``ci_compare``, then ``strcmp``)."""
    raw = b(name)
    return (tuple(_fold(c) for c in raw) + (0,), raw)


def glob_in_dir(r: "_Run", directory: str) -> list[str]:
    """lib.pl's ``glob_in_dir``: ``chdir DIR or die``, then ``glob("*[!~]")``."""
    inv = r.inv
    try:
        info = inv.fs.stat(directory)
        if not st.S_ISDIR(info.st_mode):
            raise NotADirectoryError(20, os.strerror(20))
        names = inv.fs.readdir(directory)
    except OSError as e:
        raise _die(r, LIB_PL, 27, f"chdir {directory}: {os.strerror(e.errno)}", e.errno) from None
    # `*` never matches a leading dot; `[!~]` wants a last byte that is not `~`
    found = [n for n in names if n and not n.startswith(".") and not b(n).endswith(b"~")]
    return sorted(found, key=_alphasort_key)


class _Run:
    """One run of either script: the environment its children get and how they are started."""

    def __init__(self, inv: Invocation, script: str):
        self.inv = inv
        self.script = script
        if inv.run is None:
            raise Defer(f"{inv.name}: cannot start programs without an interpreter")
        if inv.umask == 0:
            # `umask 0022 or die`: umask returns the old mask, 0, which is false
            raise Defer(f"{inv.name}: the caller's umask is 0, so `umask 0022 or die` dies with a $! left over "
                        "from earlier calls")
        self.env = {**inv.env, "EMACS_INHIBIT_AUTOMATIC_NATIVE_COMPILATION": "t"}
        #: lines read from the TSORT handle, never closed: perl's warnings and dies name it
        self.tsort_lines = 0

    def at(self, script: str, line: int) -> str:
        """Where perl says a warning or die happened: ``at SCRIPT line N[, <TSORT> line M].``"""
        tail = f", <TSORT> line {self.tsort_lines}" if self.tsort_lines else ""
        return f"at {script} line {line}{tail}."

    def run(self, argv: list[str], capture: bool = False) -> tuple[int, bytes]:
        """``system(LIST)``: stdout and stderr go where the script's go (stdout returned
        instead with ``capture``, as backticks do)."""
        if self.inv.umask != 0o022:
            raise Defer(f"{self.inv.name}: the script sets umask 022 for the programs it starts; the caller's "
                        f"umask {self.inv.umask:03o} would be theirs here")
        status, out, err = self.inv.run(argv, b"", self.env)
        if not capture:
            self.inv.out(out)
        self.inv.err(err)
        return status, out

    def system_script(self, path: str, args: list[str], line: int, script: str | None = None) -> int:
        """``system($script, ARGS)`` for a package script: perl's own ``Can't exec`` warning
        (``-w``) and -1 when execvp fails for want of an execute bit, else the child's status."""
        try:
            info = self.inv.fs.stat(path)
        except OSError:
            info = None
        if info is not None and (not st.S_ISREG(info.st_mode) or not info.st_mode & 0o111):
            self.inv.err(f"Can't exec \"{path}\": Permission denied {self.at(script or self.script, line)}\n")
            return -1
        return self.run([path, *args])[0]

    def touch_state(self, pkg: str, directory: str = PACKAGE_STATE) -> None:
        """``ex('touch', STATE/PKG)`` (a flavor's state file with ``directory``)."""
        status, _ = self.run(["touch", f"{directory}/{pkg}"])
        if status != 0:
            raise Defer(f"{self.inv.name}: touch {directory}/{pkg} failed; the script then dies with a $! left "
                        "over from earlier calls")

    def unlink_state(self, pkg: str, line: int, directory: str = PACKAGE_STATE) -> None:
        """``unlink(STATE/PKG) or $!{ENOENT} or die`` (Perl's unlink lstats first and refuses
        a directory with EISDIR)."""
        path = f"{directory}/{pkg}"
        try:
            info = self.inv.fs.lstat(path)
            if st.S_ISDIR(info.st_mode):
                raise IsADirectoryError(21, os.strerror(21))
            self.inv.fs.unlink(path)
        except OSError as e:
            if e.errno == 2:
                return
            raise _die(self, self.script, line, f"ERROR: cannot unlink {path}: {os.strerror(e.errno)}, ",
                       e.errno) from None


def _validate(inv: Invocation, pkg: str, name: str, old_style: bool) -> None:
    """lib.pl's ``validate_add_on_pkg`` (its ``exit(1)`` is commented out)."""
    compat = _exists(inv, f"{LIB_DIR}/packages/compat/{pkg}")
    if old_style and compat:
        inv.err(f"ERROR: {pkg} is broken - called {name} as an old-style add-on, but has compat file.\n")
    elif not old_style and not compat:
        inv.err(f"ERROR: {pkg} is broken - called {name} as a new-style add-on, but has no compat file.\n")


def _installed_add_ons(r: _Run) -> set[str]:
    """lib.pl's ``get_installed_add_on_packages`` (a hash: only membership matters)."""
    inv = r.inv
    all_pkgs = glob_in_dir(r, f"{LIB_DIR}/packages/install")
    new_format = glob_in_dir(r, f"{LIB_DIR}/packages/compat")
    ready = set(all_pkgs)
    for p in new_format:
        if not _exists(inv, f"{PACKAGE_STATE}/{p}"):
            ready.discard(p)
    return ready


def _depends(r: _Run, pkg: str, last: list[bytes]) -> tuple[bytes, bool]:
    """``get_package_status`` and the ``Depends`` match of lib.pl's tsort input builder.

    Returns the value and whether the package's own status had the line.
    A status without a ``Depends`` line leaves ``$1`` as it was: the substitution that joins
    continuation lines ran inside ``get_package_status`` (its match state ended with it), the
    recursion's levels share one compiled pattern, so ``$1`` is the capture of the last
    successful ``Depends`` match of this run (``last``), or undef before any. A package
    without dependencies thereby gets those of the package processed before it.
    """
    if _SHELL_META.search(b(pkg)):
        raise Defer(f"{r.inv.name}: Perl's backticks would give `dpkg --status {pkg}` to a shell")
    status, out = r.run(["dpkg", "--status", pkg], capture=True)
    if status != 0:
        raise Defer(f"{r.inv.name}: dpkg --status {pkg} failed; lib.pl then dies with a $! left over from earlier "
                    "calls")
    joined = re.sub(rb"\n\s+", b"", out)  # s/\n\s+//gmo: continuation lines joined
    m = re.search(rb"^Depends:\s+(.*)", joined, re.M)
    if m is not None:
        last[:] = [m.group(1)]
    value = last[0] if last else b""
    return (b"" if value in (b"", b"0") else value), m is not None  # `$depends = "" if ! $depends`


def _filter_depends(r: _Run, depends: bytes, add_ons: set[str]) -> list[str]:
    """lib.pl's ``filter_depends``: ``split /[,|]/`` (trailing empty fields dropped), each
    field's first word, only installed add-ons."""
    fields = re.split(rb"[,|]", depends)
    while fields and fields[-1] == b"":
        fields.pop()
    out = []
    for f in fields:
        m = re.search(rb"\s*(\S+)", f)
        if m is None:
            raise Defer(f"{r.inv.name}: an empty Depends alternative ($1 left over from an earlier match)")
        name = s(m.group(1))
        if name in add_ons:
            out.append(name)
    return out


def install_list(r: _Run, pkgs: list[str]) -> list[str]:
    """lib.pl's ``generate_add_on_install_list(PKGS)``: the tsort order of PKGS and the add-ons
    they depend on, as lib.pl's recursion collects them.

    The flavor-level scripts pass ``keys %ready_pkgs``, whose order is Perl's hash order,
    random per run (``PERL_HASH_SEED``). The pairs fed to tsort then come in that order, and
    two things make the answer depend on it: a package without a ``Depends`` line gets the
    dependencies of the one processed before it (``$1`` left over; emacsen-common itself has
    none), and GNU tsort frees the dependants of a node in the order their pairs came. With
    more than one package the model runs them in sorted order and defers unless neither can
    matter (no add-on depends on another, or every package has its own ``Depends`` line; no
    add-on has two dependants; tsort finds no loop): then every hash order gives this run.
    """
    add_ons = _installed_add_ons(r)
    pending, seen, pairs, last = list(pkgs), set(), [], []
    successors: dict[str, set[str]] = {}
    lacking = False
    while pending:
        p = pending.pop(0)
        if p in ("", "0") or p in seen:  # `if(!$pkg || $$progress_hash{$pkg}) { return (); }`
            break
        depends, own = _depends(r, p, last)
        lacking = lacking or not own
        deps = _filter_depends(r, depends, add_ons)
        pending += deps
        seen.add(p)
        pairs.append(f"{p} {p}\n")
        pairs += [f"{d} {p}\n" for d in deps]
        for d in deps:
            successors.setdefault(d, set()).add(p)
    # the forked child prints the pairs into `tsort`; the parent reads its lines, chomped
    status, out, err = r.inv.run(["tsort"], b("".join(pairs)), r.env)
    ordered = (lacking and any(v - {k} for k, v in successors.items())) or status != 0 \
        or any(len(v - {k}) > 1 for k, v in successors.items())
    if len(pkgs) > 1 and ordered:
        raise Defer(f"{r.inv.name}: the order of the add-on packages ({', '.join(sorted(pkgs))}) depends on "
                    "Perl's hash order, random per run")
    r.inv.err(err)  # a loop is reported by tsort; its status is not looked at
    lines = out.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    r.tsort_lines = len(lines)
    return [s(line) for line in lines]


@all_or_nothing  # a package script deferring part-way (emacs byte-compiling) leaves the image as it was
def emacs_package_install(inv: Invocation) -> int:
    """``emacs-package-install`` (emacsen-common 3.0.5), see the module docstring."""
    r = _Run(inv, INSTALL)  # `umask 0022 or die` comes before the arguments are looked at
    args = inv.argv[1:]
    old_style = False
    if len(args) == 1:
        old_style, pkg, context = True, args[0], "postinst"
    elif len(args) == 2 and args[0] in ("--preinst", "--postinst"):
        context, pkg = args[0][2:], args[1]
    else:
        inv.err("Usage: emacs-package-install (--preinst|--postinst) FLAVOR\n")
        return 1
    try:
        if context == "preinst":
            r.unlink_state(pkg, 63)  # perl names the line of the `unless`
            return 0
        _validate(inv, pkg, "emacs-package-install", old_style)
        r.touch_state(pkg)
        pkgs = install_list(r, [pkg])
        flavors = glob_in_dir(r, FLAVOR_STATE)
        for p in pkgs:
            script = f"{LIB_DIR}/packages/install/{p}"
            if _exists(inv, f"{LIB_DIR}/packages/compat/{p}"):
                for flavor in flavors:
                    inv.out(f"Install {p} for {flavor}\n")
                    if _exists(inv, script) and r.system_script(script, [flavor], 87) != 0:
                        inv.err(f"ERROR: install script from {p} package failed\n")
                        return 1
            else:
                inv.out(f"Install {p} for emacs\n")
                if _exists(inv, script):
                    _ex(r, script, ["emacs", *flavors])
                for flavor in flavors:
                    inv.out(f"Install {p} for {flavor}\n")
                    if _exists(inv, script) and r.system_script(script, [flavor, *flavors], 102) != 0:
                        inv.err(f"ERROR: install script from {p} package failed\n")
                        return 1
    except _Die as d:
        return d.status
    return 0


def _ex(r: _Run, script: str, args: list[str]) -> None:
    """lib.pl's ``ex``: ``system(@cmd) != 0`` dies with "CMD failed"."""
    status = r.system_script(script, args, 17, LIB_PL)
    if status == -1:  # execvp's errno is perl's $!: EACCES
        raise _die(r, LIB_PL, 19, " ".join([script, *args]) + " failed", 13)
    if status != 0:
        raise Defer(f"{r.inv.name}: {script} failed; lib.pl then dies with a $! left over from earlier calls")


@all_or_nothing  # a package script deferring part-way leaves the image as it was
def emacs_package_remove(inv: Invocation) -> int:
    """``emacs-package-remove`` (emacsen-common 3.0.5), see the module docstring."""
    r = _Run(inv, REMOVE)
    args = inv.argv[1:]
    if len(args) == 1:
        old_style, pkg = True, args[0]
    elif len(args) == 2 and args[0] == "--prerm":
        old_style, pkg = False, args[1]
    else:
        inv.err("Usage: emacs-package-remove --prerm FLAVOR\n")
        return 1
    try:
        _validate(inv, pkg, "emacs-package-remove", old_style)
        flavors = glob_in_dir(r, FLAVOR_STATE)
        script = f"{LIB_DIR}/packages/remove/{pkg}"
        if not old_style:
            for flavor in flavors:
                inv.out(f"Remove {pkg} for {flavor}\n")
                if _exists(inv, script) and r.system_script(script, [flavor], 57) != 0:
                    inv.err(f"ERROR: remove script from {pkg} package failed\n")
                    return 1
        else:
            inv.out(f"Remove {pkg} for emacs\n")
            if _exists(inv, script):
                _ex(r, script, ["emacs", *flavors])
            for flavor in flavors:
                inv.out(f"Remove {pkg} for {flavor}\n")
                if _exists(inv, script) and r.system_script(script, [flavor, *flavors], 72) != 0:
                    inv.err(f"ERROR: remove script from {pkg} package failed\n")
                    return 1
        r.unlink_state(pkg, 81)  # perl names the line of the `unless`
    except _Die as d:
        return d.status
    return 0


# ---- the flavor-level pair: an Emacs flavor's postinst and prerm --------------------------------
INSTALL_FLAVOR = LIB_DIR + "/emacs-install"
REMOVE_FLAVOR = LIB_DIR + "/emacs-remove"
#: SHA-256 of the texts the flavor models follow (emacsen-common 3.0.5): the script and the
#: lib.pl it requires; another text defers
KNOWN_FLAVOR_TEXTS = {
    INSTALL_FLAVOR: "71ad383a2333b333e24c13028cfe95cb39bf40b92ef6f0948c2d36548c43049f",
    REMOVE_FLAVOR: "ee54566231b951fac12c5976a89f3f6f733d90a0f59fbb8fddaf903e5dc0c11e",
    LIB_PL: "0453fe8ea8c660f3605e1d6c91e64ebdc180a530acf243b64461887b116b5d41",
}


def _known_texts(inv: Invocation, script: str) -> None:
    """Defer unless the program run is ``script`` and it and lib.pl are the known texts."""
    if "/" in inv.argv[0] and posixpath.normpath(inv.path(inv.argv[0])) != script:
        raise Defer(f"{inv.name}: only {script} is modelled")
    for path in (script, LIB_PL):
        if content_sha256(inv.fs, path) != KNOWN_FLAVOR_TEXTS[path]:
            raise Defer(f"{inv.name}: {path} is not emacsen-common 3.0.5's (unknown SHA-256)")


def _ready_add_ons(r: _Run) -> list[str]:
    """``get_installed_add_on_packages()`` as the flavor scripts pass it: ``keys %ready_pkgs``
    (sorted here; :func:`install_list` defers where the order would matter)."""
    return sorted(_installed_add_ons(r))


@all_or_nothing  # an add-on's script deferring part-way (emacs byte-compiling) leaves the image as it was
def emacs_install(inv: Invocation) -> int:
    """``emacs-install FLAVOR`` (emacsen-common 3.0.5), an Emacs flavor's postinst: marks the
    flavor installed (``state/flavor/installed/FLAVOR``) and runs every ready add-on's install
    script for it, in lib.pl's order; ``--preinst FLAVOR`` unlinks the state file."""
    _known_texts(inv, INSTALL_FLAVOR)
    r = _Run(inv, INSTALL_FLAVOR)  # `umask 0022 or die` comes before the arguments
    args = inv.argv[1:]
    if len(args) == 1:
        context, flavor = "postinst", args[0]  # the script's 'postinst;' is not 'preinst' either
    elif len(args) == 2 and args[0] in ("--preinst", "--postinst"):
        context, flavor = args[0][2:], args[1]
    else:
        inv.err("Usage: emacs-install (--preinst|--postinst) FLAVOR\n")
        return 1
    try:
        if context == "preinst":
            # `unlink("$f"); die ... unless (unlink($f) or $!{ENOENT})`: the second call sees
            # ENOENT after the first succeeded, or the first one's error again
            r.unlink_state(flavor, 57, FLAVOR_STATE)
            return 0
        flavors = glob_in_dir(r, FLAVOR_STATE)  # before the touch: the new flavor is not in it
        r.touch_state(flavor, FLAVOR_STATE)
        for p in install_list(r, _ready_add_ons(r)):
            inv.out(f"Install {p} for {flavor}\n")
            script = f"{LIB_DIR}/packages/install/{p}"
            new_style = _exists(inv, f"{LIB_DIR}/packages/compat/{p}")
            argv = [flavor] if new_style else [flavor, *flavors]
            if _exists(inv, script) and r.system_script(script, argv, 78 if new_style else 82) != 0:
                inv.err(f"ERROR: install script from {p} package failed\n")
                return 1
    except _Die as d:
        return d.status
    return 0


@all_or_nothing  # an add-on's script deferring part-way leaves the image as it was
def emacs_remove(inv: Invocation) -> int:
    """``emacs-remove FLAVOR`` (emacsen-common 3.0.5), an Emacs flavor's prerm: runs every
    ready add-on's remove script for the flavor, in lib.pl's order reversed, then unlinks
    ``state/flavor/installed/FLAVOR``."""
    _known_texts(inv, REMOVE_FLAVOR)
    r = _Run(inv, REMOVE_FLAVOR)
    args = inv.argv[1:]
    if len(args) == 1:
        flavor = args[0]
    elif len(args) == 2 and args[0] == "--prerm":
        flavor = args[1]
    else:
        inv.err("Usage: emacs-remove --prerm FLAVOR\n")
        return 1
    try:
        ordered = list(reversed(install_list(r, _ready_add_ons(r))))
        flavors = glob_in_dir(r, FLAVOR_STATE)
        for p in ordered:
            inv.out(f"Remove {p} for {flavor}\n")
            script = f"{LIB_DIR}/packages/remove/{p}"
            new_style = _exists(inv, f"{LIB_DIR}/packages/compat/{p}")
            argv = [flavor] if new_style else [flavor, *flavors]
            if _exists(inv, script) and r.system_script(script, argv, 57 if new_style else 61) != 0:
                inv.err(f"ERROR: remove script from {p} package failed\n")
                return 1
        r.unlink_state(flavor, 74, FLAVOR_STATE)  # perl names the line of the `unless`
    except _Die as d:
        return d.status
    return 0
