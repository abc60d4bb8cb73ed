"""SysV init helpers of Debian 12 (init-system-helpers 1.65): ``update-rc.d`` modelled,
``invoke-rc.d``, ``service``, ``start-stop-daemon``, ``telinit``/``initctl`` dropped.

``update-rc.d`` follows ``/usr/sbin/update-rc.d`` (Perl; modelled, never run): without
insserv it makes ``/etc/rc?.d/S01name``/``K01name`` links from the script's LSB
``Default-Start``/``Default-Stop`` (``make_sysv_links``), ``remove`` deletes them,
``enable``/``disable`` rename S to K and back (``sysv_toggle``) and then let ``systemctl
--root=/ --quiet enable|disable name`` mirror the change for the native unit
(``make_systemd_links``; without systemctl in the image, the script's own ``WantedBy=`` links).
With insserv installed the ordering is insserv's, which is deferred.

Service actions never run offline. Nuwa applies the policy DESIGN.md gives the dpkg oracle
(``/usr/sbin/policy-rc.d`` exiting 101), whatever the image holds: ``invoke-rc.d`` exits as
it does when policy-rc.d denies (0; 4 for ``status``; 101 with ``--disclose-deny`` or
``--query``); ``service`` and ``start-stop-daemon --start`` as if the action succeeded (0),
``service NAME status`` and ``start-stop-daemon --status`` say "not running" (3),
``start-stop-daemon --stop`` finds no process ("No NAME found running; none killed.", 1, 0
with ``--oknodo``; simulated: that is its whole effect where nothing runs); ``runlevel`` prints
``unknown`` and exits 1, as it does on a system that is not running.
"""

from __future__ import annotations

import os
import re

from nuwa.script.commands.services.systemd_units import lstat, stat
from nuwa.script.context import Defer, Drop, Invocation

USAGE = (
    "usage: update-rc.d [-f] <basename> remove\n"
    "       update-rc.d [-f] <basename> defaults\n"
    "       update-rc.d [-f] <basename> defaults-disabled\n"
    "       update-rc.d <basename> disable|enable [S|2|3|4|5]\n"
    "\t\t-f: force\n"
    "\n"
    "The disable|enable API is not stable and might change in the future.\n"
)
_GLOB_CHARS = set("*?[]{}~ \t\n\\")
_LINK = re.compile(r"^[SK][0-9][0-9]")


class _Exit(Exception):
    def __init__(self, status: int):
        self.status = status


def _executable(inv: Invocation, path: str) -> bool:
    s = stat(inv.fs, path)
    return s is not None and s.is_reg and bool(s.st_mode & 0o111)


def parse_def_start_stop(text: str) -> tuple[list[str], list[str]]:
    """``parse_def_start_stop``: Default-Start and Default-Stop of an LSB header."""
    begin = False
    start: list[str] = []
    stop: list[str] = []
    for line in text.split("\n"):
        if re.match(r"### BEGIN INIT INFO\s*$", line):
            begin = True
        elif re.match(r"### END INIT INFO\s*$", line):
            break
        elif begin:
            m = re.match(r"# Default-Start:\s*(\S?.*)$", line)
            if m:
                start = m.group(1).split()
            m = re.match(r"# Default-Stop:\s*(\S?.*)$", line)
            if m:
                stop = m.group(1).split()
    return start, stop


class _UpdateRcD:
    """One run of update-rc.d."""

    def __init__(self, inv: Invocation, skip_native: bool):
        self.inv = inv
        self.fs = inv.fs
        self.skip_native = skip_native or inv.env.get("_SKIP_SYSTEMD_NATIVE") == "1"

    def error(self, msg: str, status: int = 1):
        self.inv.err(f"update-rc.d: error: {msg}\n")
        raise _Exit(status)

    def usage(self, msg: str | None = None):
        if msg is not None:
            self.inv.err(f"update-rc.d: error: {msg}\n")
        self.inv.err(USAGE)
        raise _Exit(1)

    def links(self, levels: str, name: str) -> list[str]:
        """``glob("/etc/rc[LEVELS].d/[SK][0-9][0-9]NAME")``."""
        out = []
        for lvl in levels:
            d = f"/etc/rc{lvl}.d"
            try:
                entries = self.fs.readdir(d)
            except OSError:
                continue
            for e in entries:
                if e[3:] == name and _LINK.match(e):
                    out.append(f"{d}/{e}")
        return sorted(out, key=str.lower)

    def read_script(self, path: str) -> str:
        try:
            return self.fs.read_bytes(path).decode("latin-1")
        except OSError:
            self.error(f"unable to read {path}")
            raise AssertionError("unreachable")

    def make_path(self, path: str) -> None:
        cur = ""
        for c in path.split("/"):
            cur = f"{cur}/{c}" if cur or c else c
            if cur and lstat(self.fs, cur) is None:
                try:
                    self.fs.mkdir(cur, 0o755 & ~self.inv.umask)
                except OSError:
                    pass

    def sysv_links(self, name: str, action: str) -> None:
        """``make_sysv_links``."""
        if action == "remove":
            for p in self.links("0123456S789", name):
                try:
                    self.fs.unlink(p)
                except OSError:
                    pass
            return
        if self.links("0123456S789", name):
            return
        start, stop = parse_def_start_stop(self.read_script(f"/etc/init.d/{name}"))
        sk = "K" if action == "defaults-disabled" else "S"
        for lvls, kind in ((start, sk), (stop, "K")):
            for lvl in lvls:
                self.make_path(f"/etc/rc{lvl}.d")
                try:
                    self.fs.symlink(f"../init.d/{name}", f"/etc/rc{lvl}.d/{kind}01{name}")
                except OSError:
                    pass

    def toggle(self, act: str, name: str, levels: list[str]) -> None:
        """``sysv_toggle``: S<->K on the links of the given (or default) runlevels."""
        header = None
        for f in (f"/etc/insserv/overrides/{name}", f"/etc/init.d/{name}", f"/usr/share/insserv/overrides/{name}"):
            s = stat(self.fs, f)
            if s is not None and s.st_size > 0:
                header = f
                break
        if header is None:
            self.error(f"cannot find a LSB script for {name}")
        if not levels:
            levels = parse_def_start_stop(self.read_script(header))[0]
            if not levels:
                self.error(f"{name} Default-Start contains no runlevels, aborting.")
        found: list[str] = []
        for lvl in levels:
            if not re.fullmatch(r"[S2345]", lvl):
                self.inv.err(f"update-rc.d: warning: {act} action will have no effect on runlevel {lvl}\n")
                continue
            found += self.links(lvl, name)
        if not found:
            self.error("no runlevel symlinks to modify, aborting!")
        old, new = ("/S", "K") if act == "disable" else ("/K", "S")
        for cur in found:
            k = cur.rfind(old) + 1
            if k < 1:
                continue
            try:
                self.fs.rename(cur, cur[:k] + new + cur[k + 1:])
            except OSError as e:
                self.error(os.strerror(e.errno or 5))

    def systemd_links(self, name: str, action: str) -> None:
        """``make_systemd_links`` (enable/disable only)."""
        if self.skip_native:
            return
        if _executable(self.inv, "/bin/systemctl") or _executable(self.inv, "/usr/bin/systemctl"):
            # update-rc.d runs the systemctl program: found in the interpreter's model set,
            # as the shell would find it (and systemctl's own SysV step imports this module)
            systemctl = self.inv.models.get("systemctl")
            if systemctl is None:
                raise Defer("update-rc.d: no model for systemctl")
            env = dict(self.inv.env, SYSTEMCTL_SKIP_SYSV="1")
            sub = Invocation(argv=["systemctl", "--root=/", "--quiet", action, name], fs=self.fs,
                             cwd=self.inv.cwd, env=env, umask=self.inv.umask, run=self.inv.run,
                             state=self.inv.state, models=self.inv.models)
            systemctl(sub)
            self.inv.out(bytes(sub.stdout))
            self.inv.err(bytes(sub.stderr))
            return
        path = None
        for d in ("/etc/systemd/system", "/lib/systemd/system", "/usr/lib/systemd/system"):
            s = stat(self.fs, f"{d}/{name}.service")
            if s is not None and s.is_reg:
                path = f"{d}/{name}.service"
                break
        if path is None:
            return
        for line in self.read_script(path).split("\n"):
            m = re.match(r"\s*WantedBy=(.+)$", line, re.I)
            if not m:
                continue
            wants = f"/etc/systemd/system/{m.group(1)}.wants"
            link = f"{wants}/{name}.service"
            if action == "enable":
                self.make_path(wants)
                try:
                    self.fs.symlink(path, link)
                except OSError:
                    pass
            elif stat(self.fs, link) is not None:
                self.fs.unlink(link)

    def systemd_reload(self) -> None:
        """``systemd_reload``: only when the image claims a running systemd (never at boot)."""
        if self.inv.env.get("DPKG_ROOT"):
            return
        s = stat(self.fs, "/run/systemd/system")
        if s is not None and s.is_dir and self.inv.run is not None:
            self.inv.run(["systemctl", "daemon-reload"], b"")

    def cmp_args(self, name: str, act: str, args: list[str]) -> None:
        """``cmp_args_with_defaults``: warn that start/stop runlevel arguments are ignored."""
        lsb_start, lsb_stop = parse_def_start_stop(self.read_script(f"/etc/init.d/{name}"))
        if not lsb_start and not lsb_stop:
            return
        self.inv.err("update-rc.d: warning: start and stop actions are no longer supported; falling back to defaults\n")
        start, stop = act == "start", act == "stop"
        arg_start: list[str] = []
        arg_stop: list[str] = []
        i = 2 if args and args[0] == act else 1
        while i < len(args):
            a = args[i]
            i += 1
            if a in ("0", "6"):
                start, stop = False, True
            elif a == "start":
                start, stop = True, False
                i += 1
                continue
            elif a == "stop":
                start, stop = False, True
                i += 1
                continue
            elif a == ".":
                continue
            if start:
                arg_start.append(a)
            if stop:
                arg_stop.append(a)
        for kind, got, lsb in (("start", arg_start, lsb_start), ("stop", arg_stop, lsb_stop)):
            if sorted(got) != sorted(lsb):
                g = " ".join(got) if got else "none"
                w = " ".join(lsb) if lsb else "none"
                cap = "Start" if kind == "start" else "Stop"
                self.inv.err(f"update-rc.d: warning: {kind} runlevel arguments ({g}) do not match "
                             f"{name} Default-{cap} values ({w})\n")

    def main(self, args: list[str]) -> int:
        while args and args[0].startswith("-"):
            a = args.pop(0)
            if a == "-f":
                continue
            if re.match(r"^-h|--help$", a):
                self.usage()
            self.usage("unknown option")
        if len(args) < 2:
            self.usage("not enough arguments")
        if (_executable(self.inv, "/usr/lib/insserv/insserv") or _executable(self.inv, "/sbin/insserv")) \
                and lstat(self.fs, "/etc/insserv.conf") is not None:
            raise Defer("update-rc.d: insserv orders the links (not modelled)")
        if _executable(self.inv, "/sbin/openrc"):
            raise Defer("update-rc.d: OpenRC is not modelled")
        name, action, rest = args[0], args[1], args[2:]
        if _GLOB_CHARS & set(name):
            raise Defer(f"update-rc.d: script name {name!r} would be globbed")
        if action == "remove":
            self.sysv_links(name, "remove")
            self.systemd_reload()
        elif action in ("defaults", "start", "stop"):
            if action in ("start", "stop"):
                self.cmp_args(name, action, rest)
            self.sysv_links(name, "defaults")
            self.systemd_reload()
        elif action == "defaults-disabled":
            self.sysv_links(name, "defaults-disabled")
            self.systemd_reload()
        elif action in ("disable", "enable"):
            self.toggle(action, name, rest)
            self.systemd_links(name, action)
            self.systemd_reload()
        else:
            self.usage()
        return 0


def update_rc_d_model(inv: Invocation, args: list[str], skip_native: bool = False) -> int:
    """Run update-rc.d with ``args`` against ``inv`` (used by systemctl's SysV synchronisation)."""
    try:
        return _UpdateRcD(inv, skip_native).main(list(args))
    except _Exit as e:
        return e.status


def update_rc_d(inv: Invocation) -> int:
    """The ``update-rc.d`` model."""
    return update_rc_d_model(inv, inv.argv[1:])


# -- dropped: service actions ---------------------------------------------------------------

_INVOKE_HELP = """
invoke-rc.d, Debian/SysVinit (/etc/rc?.d) initscript subsystem.
Copyright (c) 2000,2001 Henrique de Moraes Holschuh <hmh@debian.org>

Usage:
  invoke-rc.d [options] <basename> <action> [extra parameters]

  basename - Initscript ID, as per update-rc.d(8)
  action   - Initscript action. Known actions are:
                start, [force-]stop, [try-]restart,
                [force-]reload, status
  WARNING: not all initscripts implement all of the above actions.

  extra parameters are passed as is to the initscript, following 
  the action (first initscript parameter).

Options:
  --quiet
     Quiet mode, no error messages are generated.
  --force
     Try to run the initscript regardless of policy and subsystem
     non-fatal errors.
  --try-anyway
     Try to run init script even if a non-fatal error is found.
  --disclose-deny
     Return status code 101 instead of status code 0 if
     initscript action is denied by local policy rules or
     runlevel constrains.
  --query
     Returns one of status codes 100-106, does not run
     the initscript. Implies --disclose-deny and --no-fallback.
  --no-fallback
     Ignores any fallback action requests by the policy layer.
     Warning: this is usually a very *bad* idea for any actions
     other than "start".
  --skip-systemd-native
    Exits before doing anything if a systemd environment is detected
    and the requested service is a native systemd unit.
    This is useful for maintainer scripts that want to defer systemd
    actions to deb-systemd-invoke
  --help
     Outputs help message to stdout

"""


def invoke_rc_d(inv: Invocation) -> int:
    """``invoke-rc.d`` under a denying policy-rc.d: argument errors as the script reports them,
    otherwise the action is dropped with the status a maintainer script would see."""
    args = inv.argv[1:]
    quiet = disclose = query = False
    words: list[str] = []

    def perr(msg: str) -> None:
        if not quiet:
            inv.err(f"invoke-rc.d: {msg}\n")

    if not args:
        perr("syntax error: missing required parameter, --help assumed")
        inv.out(_INVOKE_HELP)
        return 103
    while args and len(words) < 2:
        a = args.pop(0)
        if a == "--help":
            inv.out(_INVOKE_HELP)
            return 0
        if a == "--quiet":
            quiet = True
        elif a == "--disclose-deny":
            disclose = True
        elif a == "--query":
            query = disclose = True
        elif a in ("--force", "--try-anyway", "--no-fallback", "--skip-systemd-native"):
            pass
        elif a.startswith("--"):
            perr(f"syntax error: unknown option \"{a}\"")
            return 103
        else:
            if a == "" or any(c in a for c in " \t\n"):
                perr("syntax error: invalid empty parameter" if a == "" or not a.split()
                     else f"syntax error: embedded blanks are not allowed in \"{a}\"")
                return 103
            words.append(a)
    if len(words) < 2:
        perr("syntax error: missing required parameter")
        return 103
    name, action = words
    script = f"/etc/init.d/{name}"
    runnable = _executable(inv, script)
    if not runnable:
        # nothing would run on a live system either: this is the whole effect
        if stat(inv.fs, script) is None or not stat(inv.fs, script).is_reg:
            perr(f"unknown initscript, {script} not found.")
        perr("could not determine current runlevel")
        if query or disclose:
            if not query:
                perr(f"initscript action \"{action}\" not executed.")
            return 101
        if action == "status":
            perr("emulating initscript action \"status\", returning \"unknown\"")
            return 4
        return 0
    if query or disclose:
        status = 101
    else:
        status = 4 if action == "status" else 0
    raise Drop(f"invoke-rc.d {name} {action}: services are not run offline "
               f"(policy-rc.d denies as in a chroot; exit {status})", status)


def service(inv: Invocation) -> int:
    """``service NAME ACTION``: dropped (0; ``status`` reports "not running", 3)."""
    args = [a for a in inv.argv[1:]]
    if not args or args[0] in ("--help", "-h"):
        raise Defer("service usage text is not modelled")
    if args[0] in ("--version",):
        raise Defer("service --version is not modelled")
    status = 3 if len(args) > 1 and args[1] == "status" else 0
    raise Drop(f"service {' '.join(args[:2])}: services are not run offline (exit {status})", status)


#: start-stop-daemon options taking a value (dpkg 1.21 ``parse_options``), long -> short
_SSD_ARG = {"--exec": "-x", "--name": "-n", "--pidfile": "-p", "--user": "-u", "--retry": "-R",
            "--signal": "-s", "--chuid": "-c", "--group": "-g", "--chdir": "-d", "--startas": "-a",
            "--nicelevel": "-N", "--procsched": "-P", "--iosched": "-I", "--umask": "-k", "--pid": "--pid",
            "--ppid": "--ppid", "--chroot": "-r", "--notify-timeout": "--notify-timeout"}
_SSD_FLAG = {"--start": "-S", "--stop": "-K", "--status": "-T", "--oknodo": "-o", "--quiet": "-q",
             "--background": "-b", "--make-pidfile": "-m", "--remove-pidfile": "--remove-pidfile",
             "--no-close": "-C", "--notify-await": "--notify-await"}


def _ssd_options(args: list[str]) -> dict[str, str]:
    """start-stop-daemon's options as {short: value}; what follows ``--`` is the daemon's."""
    opts: dict[str, str] = {}
    i = 0
    shorts_arg = set(_SSD_ARG.values())
    shorts_flag = set(_SSD_FLAG.values())
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            break
        name, eq, val = a.partition("=")
        if name in _SSD_ARG or name in shorts_arg:
            key = _SSD_ARG.get(name, name)
            if not eq:
                if i >= len(args):
                    raise Defer(f"start-stop-daemon {a} without its argument")
                val, i = args[i], i + 1
            opts[key] = val
        elif a in _SSD_FLAG or a in shorts_flag:
            opts[_SSD_FLAG.get(a, a)] = ""
        elif len(a) > 2 and a[0] == "-" and a[1] != "-" and all(f"-{c}" in shorts_flag for c in a[1:]):
            for c in a[1:]:
                opts[f"-{c}"] = ""
        else:
            raise Defer(f"start-stop-daemon {a} is not modelled")
    return opts


def start_stop_daemon(inv: Invocation) -> int:
    """``start-stop-daemon``: no process runs in an offline image.

    ``--status`` finds nothing (3) and ``--stop`` nothing to signal ("No NAME found running;
    none killed.", 1, or 0 with ``--oknodo``): the whole effect of these on a dormant system,
    simulated. ``--start`` would run a daemon: dropped (0). An ``--exec`` program missing from
    the image fails as dpkg's start-stop-daemon fails ("unable to stat", 2; 4 for --status).
    """
    opts = _ssd_options(inv.argv[1:])
    cmds = [c for c in ("-S", "-K", "-T") if c in opts]
    if len(cmds) != 1 or any(k in opts for k in ("-r", "--pid", "--ppid")):
        raise Defer("start-stop-daemon without exactly one of --start/--stop/--status, or with --chroot/--pid/"
                    "--ppid, is not modelled")
    cmd = {"-S": "start", "-K": "stop", "-T": "status"}[cmds[0]]
    exe = opts.get("-x")
    if exe is not None:
        if not exe.startswith("/"):
            raise Defer(f"start-stop-daemon --exec {exe}: a relative program path")
        if stat(inv.fs, exe) is None:
            inv.err(f"start-stop-daemon: unable to stat {exe} (No such file or directory)\n")
            return 4 if cmd == "status" else 2
    if cmd == "status":
        return 3
    if cmd == "start":
        raise Drop("start-stop-daemon --start: daemons are not started offline (exit 0)", 0)
    if "-q" not in opts:
        if exe is not None:
            what = exe
        elif "-n" in opts:
            what = opts["-n"]
        elif "-p" in opts:
            what = f"process in pidfile '{opts['-p']}'"
        elif "-u" in opts:
            what = f"process(es) owned by '{opts['-u']}'"
        else:
            raise Defer("start-stop-daemon --stop needs --exec, --name, --pidfile or --user")
        inv.out(f"No {what} found running; none killed.\n")
    return 0 if "-o" in opts else 1


def telinit(inv: Invocation) -> int:
    """Requests to a running init: dropped."""
    raise Drop(f"{inv.name} {' '.join(inv.argv[1:3])}: init is not running offline", 0)


def runlevel(inv: Invocation) -> int:
    """``runlevel`` on a system that is not running: "unknown", exit 1."""
    inv.out("unknown\n")
    return 1
