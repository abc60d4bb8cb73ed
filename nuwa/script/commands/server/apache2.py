"""A model of apache2's ``a2enmod`` (Debian 12, apache2 2.4.x), one program under six names.

``a2enmod``/``a2dismod``, ``a2enconf``/``a2disconf`` and ``a2ensite``/``a2dissite`` make or
remove the relative symlinks ``/etc/apache2/{mods,conf,sites}-enabled/NAME.{load,conf}`` that
point into ``*-available``, follow the ``# Depends:`` and ``# Conflicts:`` lines at the top of
a module's ``.load`` file, and keep the state markers under ``/var/lib/apache2/{module,conf,
site}/{enabled,disabled}_by_{admin,maint}/NAME`` (``-m``: maintainer mode; ``-p``: purge the
markers). Messages, their streams and the exit status follow ``/usr/sbin/a2enmod`` function
by function (``doit``, ``get_deps``, ``do_deps``, ``warn_deps``, ``check_conflicts``,
``check_link``, ``add_link``, ``remove_link``, ``switch_marker``).

What a running system would be told -- "To activate the new configuration, you need to run:"
and the restart/reload command -- is output only; nothing is started. The script chooses
``systemctl`` when ``/proc/1/exe`` names systemd; a dormant image has no process 1, so the
model reads that link in the image (absent) and prints the ``service`` form, as the real
program does in a chroot.

Deferred (never guessed): the interactive forms (no name: the choices are read from stdin;
disabling an essential module without ``-f`` and no answer on stdin), ``a2enmod cgi`` (asks
``apache2ctl -V`` whether the MPM is threaded), ``cache_disk`` (runs ``systemctl`` or
``update-rc.d`` for htcacheclean), glob patterns Perl's ``File::Glob`` would split or brace-
expand, and an ``envvars`` file the nested shell cannot read. A deferral part-way (a
dependency already enabled) undoes what the run wrote, so first boot runs it from the start.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import stat as _stat

from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.commands.server import A2_NAMES
from nuwa.script.context import Defer, Invocation

#: the six names of the program (``a2enmod-INSTANCE`` names of multi-instance setups are not declared)
NAMES = A2_NAMES
#: modules whose disabling asks for confirmation (a2enmod's ``@essential_module_list``)
ESSENTIAL = ("alias", "auth_basic", "authn_file", "authz_host", "authz_user", "autoindex", "deflate", "dir", "env",
             "filter", "logio", "mime", "negotiation", "setenvif", "unixd", "version", "watchdog")
_LONG = ("quiet", "force", "maintmode", "purge")
_GLOB_SPECIAL = set(" \t\n{}~\\")
_BLANKLINE = re.compile(r"^\s*(?:#.*)?$", re.ASCII)


class _Exit(Exception):
    """Perl's ``exit``/``die``: leave the program with ``status``."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


def _perl_die(inv: Invocation, msg: str, err: OSError | None = None) -> _Exit:
    """``die "msg"``: the message on stderr; the status is ``$!`` when set, else 255."""
    inv.err(msg)
    return _Exit(err.errno if err is not None and err.errno else 255)


class A2:
    """One run of the script: its settings (``$act``, ``$obj``, the directories) and state."""

    def __init__(self, inv: Invocation, act: str, obj: str, env: dict[str, str], opts: set[str]):
        self.inv = inv
        self.quiet, self.force = "q" in opts, "f" in opts
        self.maint, self.purge = "m" in opts, "p" in opts
        self.act = act + "able"
        if obj == "mod":
            self.obj, d, self.sffx, self.reload = "module", "mods", ".load", "restart"
        elif obj == "conf":
            self.obj, d, self.sffx, self.reload = "conf", "conf", ".conf", "reload"
        else:
            self.obj, d, self.sffx, self.reload = "site", "sites", ".conf", "reload"
        self.name = self.obj[:1].upper() + self.obj[1:]
        self.confdir = env.get("APACHE_CONFDIR") or "/etc/apache2"
        self.availdir = env.get(f"APACHE_{d.upper()}_AVAILABLE") or f"{self.confdir}/{d}-available"
        self.enabldir = env.get(f"APACHE_{d.upper()}_ENABLED") or f"{self.confdir}/{d}-enabled"
        self.modsenabldir = env.get("APACHE_MODS_ENABLED") or f"{self.confdir}/mods-enabled"
        self.statedir = (env.get("APACHE_STATE_DIRECTORY") or "/var/lib/apache2") + "/" + self.obj
        self.choicedir = self.availdir if self.act == "enable" else self.enabldir
        self.request_reload = False
        self.stdin_lines: list[bytes] | None = None  # read only when the prompt asks: stdin is shared
        for p in (self.availdir, self.enabldir, self.statedir, self.modsenabldir):
            if not p.startswith("/") or "\0" in p:
                raise Defer(f"{inv.name}: a relative or odd directory {p!r} from the environment")

    # -- output, as the script's info/error/warning -------------------------------------
    def info(self, text: str) -> None:
        if not self.quiet:
            self.inv.out(text)

    def error(self, text: str) -> None:
        self.inv.err("ERROR: " + text)

    # -- Perl file tests --------------------------------------------------------------
    def e(self, p: str) -> bool:
        return self.inv.fs.exists(p)

    def l(self, p: str) -> bool:
        try:
            return _stat.S_ISLNK(self.inv.fs.lstat(p).st_mode)
        except OSError:
            return False

    def realpath(self, p: str) -> str | None:
        try:
            return canonicalize(self.inv, p, "e")
        except OSError:
            return None

    # -- the script's subs ------------------------------------------------------------
    def myglob(self, arg: str) -> list[str]:
        """``glob("$choicedir/$arg$sffx")`` with File::Glob's csh flags, the prefix and suffix cut."""
        pattern = f"{self.choicedir}/{arg}{self.sffx}"
        if _GLOB_SPECIAL & set(pattern) or "/" in arg or set("*?[") & set(self.choicedir):
            raise Defer(f"{self.inv.name}: glob pattern {pattern!r} (split, braces, tilde or quoting)")
        if not set("*?[") & set(arg):
            found = [pattern]  # GLOB_NOMAGIC: a pattern without wildcards is its own result
        else:
            try:
                names = self.inv.fs.listdir(self.choicedir)
            except OSError:
                names = []
            want = arg + self.sffx
            found = [f"{self.choicedir}/{n}" for n in names
                     if fnmatch.fnmatchcase(n, want) and (not n.startswith(".") or want.startswith("."))]
            # GLOB_ALPHASORT: case-insensitive order, ties by byte order
            found.sort(key=lambda s: (s.lower(), s))
        prefix = re.compile("^" + re.escape(self.choicedir) + "/")
        suffix = re.compile(_perl_suffix(self.sffx))
        return [suffix.sub("", prefix.sub("", f, count=1), count=1) for f in found]

    def get_deps(self, path: str, kind: str = "Depends") -> list[str]:
        """The names on the first ``# Depends:`` (or ``# Conflicts:``) line of the header."""
        try:
            data = self.inv.fs.read_bytes(path)
        except OSError as e:
            self.error(f"Can't open {path}: {os.strerror(e.errno)}")
            return []
        head = re.compile(r"^# " + kind + r":\s+(.*?)\s*$", re.ASCII)
        for line in data.decode("latin-1").split("\n"):
            m = head.match(line)
            if m:
                parts = re.split(r"[\n\s]+", m.group(1), flags=re.ASCII)
                while parts and parts[-1] == "":
                    parts.pop()
                return parts
            if not _BLANKLINE.match(line):
                break
        return []

    def do_deps(self, acton: str, deps: list[str]) -> bool:
        for d in deps:
            self.info(f"Considering dependency {d} for {acton}:\n")
            if not self.doit(d):
                self.error(f"Could not {self.act} dependency {d} for {acton}, aborting\n")
                return False
        return True

    def warn_deps(self, acton: str, deps: list[str]) -> bool:
        for d in deps:
            self.info(f"Checking dependency {d} for {acton}:\n")
            if not self.e(f"{self.modsenabldir}/{d}.load"):
                self.inv.err(f"WARNING: Module {d} is not enabled, but {acton} depends on it, aborting\n")
                return False
        return True

    def check_conflicts(self, acton: str, conflicts: list[str]) -> bool:
        bad = 0
        for d in conflicts:
            self.info(f"Considering conflict {d} for {acton}:\n")
            if self.check_link(f"{self.availdir}/{d}{self.sffx}", f"{self.enabldir}/{d}{self.sffx}") == "ok":
                self.error(f"Module {d} is enabled - cannot proceed due to conflicts. It needs to be disabled first!\n")
                bad += 1
        return not bad

    def add_link(self, tgt: str, link: str) -> bool:
        # File::Spec->abs2rel is lexical, as posixpath.relpath is on absolute paths
        try:
            self.inv.fs.symlink(posixpath.relpath(tgt, posixpath.dirname(link)), link)
        except OSError as e:
            raise _perl_die(self.inv, f"Could not create {link}: {os.strerror(e.errno)}\n", e) from None
        self.request_reload = True
        return True

    def check_link(self, tgt: str, link: str) -> str:
        if not self.e(link):
            if self.l(link):
                self.info(f"Removing dangling link {link}")  # sic: no newline in the script
                try:
                    self.inv.fs.unlink(link)
                except OSError as e:
                    raise _perl_die(self.inv, f"Could not remove {link}\n", e) from None
            return "missing"
        if not self.l(link):
            return f"{link} is a real file, not touching it"
        if self.realpath(link) != self.realpath(tgt):
            return f"{link} exists but does not point to {tgt}, not touching it"
        return "ok"

    def remove_link(self, link: str) -> bool:
        if self.l(link):
            try:
                self.inv.fs.unlink(link)
            except OSError as e:
                raise _perl_die(self.inv, f"Could not remove {link}: {os.strerror(e.errno)}\n", e) from None
        elif self.e(link):
            self.error(f"{link} is not a symbolic link, not deleting\n")
            return False
        self.request_reload = True
        return True

    def _find_markers(self, top: str, name: str) -> list[str]:
        """``find "$statedir" -type f -a -name "$name"``: depth first, in readdir order."""
        found = []
        try:
            entries = self.inv.fs.listdir(top)
        except OSError:
            return found
        for n in entries:
            p = f"{top}/{n}"
            try:
                mode = self.inv.fs.lstat(p).st_mode
            except OSError:
                continue
            if _stat.S_ISREG(mode) and n == name:
                found.append(p)
            elif _stat.S_ISDIR(mode):
                found.extend(self._find_markers(p, name))
        return found

    def switch_marker(self, acton: str) -> bool:
        """Remove every marker named ``acton``, then (unless purging) touch the new one."""
        if set('*?[\\"$`') & set(acton):
            raise Defer(f"{self.inv.name}: marker name {acton!r} would be a find pattern or shell text")
        mode = "maint" if self.maint else "admin"
        mdir = f"{self.statedir}/{self.act}d_by_{mode}"
        marker = f"{mdir}/{acton}"
        fs = self.inv.fs
        if not _is_dir(fs, mdir):
            try:
                fs.makedirs(mdir, 0o777 & ~self.inv.umask)
            except OSError as e:
                raise Defer(f"{self.inv.name}: File::Path::mkpath {mdir}: {os.strerror(e.errno)}") from None
        for old in self._find_markers(self.statedir, acton):
            try:
                fs.unlink(old)
            except OSError:
                self.error(f"Failed to remove old marker '{old}'!\n")
                return False
        if self.purge:
            return False  # the sub falls off its end: undef
        if self.inv.run is not None:
            status, _out, errs = self.inv.run(["touch", marker], b"")
            self.inv.err(errs)
        else:
            try:
                if fs.exists(marker):
                    fs.utime(marker, None)
                else:
                    fs.write_bytes(marker, b"", 0o666 & ~self.inv.umask)
                status = 0
            except OSError as e:
                self.inv.err(f"touch: cannot touch '{marker}': {os.strerror(e.errno)}\n")
                status = 1
        if status != 0:
            self.error(f"Failed to create marker '{marker}'!\n")
            return False
        return True

    def special(self, acton: str) -> None:
        if self.obj != "module":
            return
        if acton == "ssl" and self.act == "enable":
            self.info("See /usr/share/doc/apache2/README.Debian.gz on how to configure SSL and create "
                      "self-signed certificates.\n")
        elif acton == "cache_disk":
            raise Defer(f"{self.inv.name} cache_disk: {self.act}s apache-htcacheclean through systemctl or update-rc.d")

    def essential(self, acton: str) -> None:
        """The confirmation prompt; the answer is the next line of stdin."""
        if self.stdin_lines is None:
            self.stdin_lines = self.inv.stdin.split(b"\n")
        if len(self.stdin_lines) < 2:
            raise Defer(f"{self.inv.name} {acton}: asks for confirmation on stdin, which has no line")
        out = self.inv.out
        out("WARNING: The following essential module will be disabled.\n")
        out("This might result in unexpected behavior and should NOT be done\n")
        out(f"unless you know exactly what you are doing!\n {acton}\n\n")
        out("To continue type in the phrase 'Yes, do as I say!' or retry by passing '-f': ")
        answer = self.stdin_lines.pop(0)
        if answer != b"Yes, do as I say!":
            out("Aborting\n")
            raise _Exit(1)

    def doit(self, acton: str) -> bool:
        """The script's ``doit``: enable or disable one object (dependencies first)."""
        conftgt = conflink = None
        if self.obj == "module":
            if self.act == "enable" and acton == "cgi":
                raise Defer(f"{self.inv.name} cgi: asks apache2ctl -V whether the MPM is threaded")
            conftgt = f"{self.availdir}/{acton}.conf"
            if self.e(conftgt):
                conflink = f"{self.enabldir}/{acton}.conf"
        tgt = f"{self.availdir}/{acton}{self.sffx}"
        link = f"{self.enabldir}/{acton}{self.sffx}"
        if not self.e(tgt):
            if self.l(link) and not self.e(link):
                if self.act == "disable":
                    self.info(f"removing dangling symlink {link}\n")
                    _try_unlink(self.inv, link)
                    conflink = f"{self.enabldir}/{acton}.conf"
                    if self.l(conflink) and not self.e(conflink):
                        self.info(f"removing dangling symlink {conflink}\n")
                        _try_unlink(self.inv, conflink)
                    return True
                self.error(f"{link} is a dangling symlink!\n")
            if self.purge:
                self.switch_marker(acton)
                return True
            self.error(f"{self.name} {acton} does not exist!\n")
            return False
        if self.obj == "module":
            if self.act == "enable":
                if not self.do_deps(acton, self.get_deps(f"{self.availdir}/{acton}.load")):
                    return False
                if not self.check_conflicts(acton, self.get_deps(f"{self.availdir}/{acton}.load", "Conflicts")):
                    return False
            else:
                depending = []
                for d in self.myglob_enabled_loads():
                    if acton in self.get_deps(d):
                        m = re.search(r"/([^/]+).load$", d)
                        depending.append(m.group(1) if m else "")
                if depending:
                    if not self.force:
                        self.error(f"The following modules depend on {acton} and need to be disabled first: "
                                   f"{' '.join(depending)}\n")
                        return False
                    if not self.do_deps(acton, depending):
                        return False
        elif self.act == "enable":
            if not self.warn_deps(acton, self.get_deps(tgt)):
                return False
        if self.act == "enable":
            return self._enable(acton, tgt, link, conftgt, conflink)
        return self._disable(acton, link, conflink)

    def myglob_enabled_loads(self) -> list[str]:
        """``glob("$enabldir/*.load")``: every entry, sorted as File::Glob sorts."""
        if set("*?[") & set(self.enabldir) or _GLOB_SPECIAL & set(self.enabldir):
            raise Defer(f"{self.inv.name}: glob over {self.enabldir!r}")
        try:
            names = self.inv.fs.listdir(self.enabldir)
        except OSError:
            return []
        found = [f"{self.enabldir}/{n}" for n in names if n.endswith(".load") and not n.startswith(".")]
        return sorted(found, key=lambda s: (s.lower(), s))

    def _enable(self, acton, tgt, link, conftgt, conflink) -> bool:
        check = self.check_link(tgt, link)
        if check == "ok":
            if conflink:
                confcheck = self.check_link(conftgt, conflink)
                if confcheck == "ok":
                    self.info(f"{self.name} {acton} already enabled\n")
                    return True
                if confcheck == "missing":
                    self.inv.out(f"Enabling config file {acton}.conf.\n")
                    return self.add_link(conftgt, conflink)
                self.error(f"Config file {acton}.conf not properly enabled: {confcheck}\n")
                return False
            self.info(f"{self.name} {acton} already enabled\n")
            return True
        if check == "missing":
            if conflink:
                confcheck = self.check_link(conftgt, conflink)
                if confcheck == "missing":
                    self.add_link(conftgt, conflink)
                elif confcheck != "ok":
                    self.error(f"Config file {acton}.conf not properly enabled: {confcheck}\n")
                    return False
            self.inv.out(f"Enabling {self.obj} {acton}.\n")
            self.special(acton)
            return self.add_link(tgt, link) and self.switch_marker(acton)
        self.error(f"{self.name} {acton} not properly enabled: {check}\n")
        return False

    def _disable(self, acton, link, conflink) -> bool:
        if self.e(link) or self.l(link):
            self.special(acton)
            if self.obj == "module" and acton in ESSENTIAL and not self.force:
                self.essential(acton)
            self.remove_link(link)
            if conflink and self.e(conflink):
                self.remove_link(conflink)
            self.switch_marker(acton)
            self.inv.out(f"{self.name} {acton} disabled.\n")
        elif conflink and self.e(conflink):
            self.inv.out(f"Disabling stale config file {acton}.conf.\n")
            self.remove_link(conflink)
        else:
            self.info(f"{self.name} {acton} already disabled\n")
            if self.purge:
                self.switch_marker(acton)
        return True


def _is_dir(fs, p: str) -> bool:
    try:
        return _stat.S_ISDIR(fs.stat(p).st_mode)
    except OSError:
        return False


def _try_unlink(inv: Invocation, p: str) -> None:
    try:
        inv.fs.unlink(p)
    except OSError:
        pass  # the script does not check this unlink


def _perl_suffix(sffx: str) -> str:
    """``s/$sffx$//``: the suffix is a Perl regex (its dot matches any character)."""
    return sffx.replace(".", "(?s:.)") + r"\Z"


def _options(inv: Invocation, args: list[str]) -> tuple[set[str], list[str], bool]:
    """Getopt::Long with ``bundling`` and its default permutation: (flags, names, ok)."""
    if "POSIXLY_CORRECT" in inv.env:
        raise Defer(f"{inv.name}: Getopt::Long under POSIXLY_CORRECT")
    opts: set[str] = set()
    rest: list[str] = []
    ok = True
    for i, a in enumerate(args):
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a.startswith("--"):
            word = a[2:]
            if "=" in word or len(word) < 2:
                raise Defer(f"{inv.name}: option {a!r} (Getopt::Long's argument or one-letter long form)")
            hits = [n for n in _LONG if n.startswith(word.lower())]
            if len(hits) != 1:
                inv.err(f"Unknown option: {word.lower()}\n")
                ok = False
            else:
                opts.add(hits[0][0])
        elif a.startswith("-") and a != "-":
            for c in a[1:]:
                if c in "qfmp":
                    opts.add(c)
                else:
                    inv.err(f"Unknown option: {c}\n")
                    ok = False
        else:
            rest.append(a)
    return opts, rest, ok


def _read_env_file(inv: Invocation, env: dict[str, str]) -> dict[str, str]:
    """``read_env_file``: ``env - sh -c '. FILE && env'``, run by the simulated shell."""
    path = env.get("APACHE_ENVVARS") or (f"{env['APACHE_CONFDIR']}/envvars" if env.get("APACHE_CONFDIR")
                                         else "/etc/apache2/envvars")
    if not inv.fs.exists(path):
        return env  # -r as root: readable whenever it exists
    if "'" in path or inv.run is None:
        raise Defer(f"{inv.name}: reading {path} needs the nested shell")
    status, out, _err = inv.run(["sh", "-c", f". {path} && env"], b"", {})
    inv.err(_err)
    if status != 0:
        raise Defer(f"{inv.name}: {path} fails in sh (Perl dies with an unpredictable status)")
    new = dict(env)
    lines = out.decode("utf-8", "surrogateescape").split("\n")
    if lines[-1] == "":
        lines.pop()
    for line in lines:
        key, eq, value = line.rpartition("=")  # /^(.*)?=(.*)$/: the key runs to the last '='
        if not eq:
            raise Defer(f"{inv.name}: {path} prints a multi-line value (Perl dies)")
        new[key] = value
    return new


@all_or_nothing  # a Defer part-way (cache_disk after its dependency) leaves the image as it was
def a2enmod(inv: Invocation) -> int:
    """``a2enmod``/``a2dismod``/``a2enconf``/``a2disconf``/``a2ensite``/``a2dissite`` [-q] [-f] [-m] [-p] NAME...

    Mirrors apache2 2.4.x's ``/usr/sbin/a2enmod`` (Debian 12) sub by sub; see the module doc.
    """
    m = re.fullmatch(r"a2(en|dis)(mod|site|conf)", inv.name)
    if not m:
        raise Defer(f"{inv.name}: not one of a2enmod's names")
    opts, names, ok = _options(inv, inv.argv[1:])
    if not ok:
        return 2
    env = dict(inv.env)
    env["LANG"] = "C"
    env = _read_env_file(inv, env)
    run = A2(inv, m.group(1), m.group(2), env, opts)
    if not names:
        raise Defer(f"{inv.name} with no name asks for the choices on stdin")
    rc = 0
    try:
        objs = []
        for arg in names:
            arg = re.sub(_perl_suffix(run.sffx), "", arg, count=1)
            found = run.myglob(arg)
            if not found:
                run.error(f"No {run.obj} found matching {arg}!\n")
                rc = 1
            objs.extend(found)
        for acton in objs:
            if not run.doit(acton):
                rc = 1
    except _Exit as e:
        return e.status
    if run.request_reload:
        try:
            systemd = "systemd" in inv.fs.readlink("/proc/1/exe")
        except OSError:
            systemd = False  # a dormant image has no process 1
        how = f"  systemctl {run.reload} apache2\n" if systemd else f"  service apache2 {run.reload}\n"
        run.info("To activate the new configuration, you need to run:\n" + how)
    return rc
