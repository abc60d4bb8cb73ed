"""debconf in maintainer scripts: the frontend, the confmodule pipes, ``debconf-escape``.

A script that wants debconf sources ``/usr/share/debconf/confmodule``. Without
``DEBIAN_HAS_FRONTEND`` in its environment that file runs ``exec /usr/share/debconf/frontend
$0 "$@"``: debconf's frontend (Perl) loads the databases and starts the script again as its
child, with the child's stdin and stdout connected to the frontend by pipes; the confmodule
then moves stdout to fd 3 and stderr to fd 1, and its ``db_*`` shell functions write commands
to fd 3 and read the replies from stdin.

Nuwa keeps all of that except Perl. The model of ``/usr/share/debconf/frontend`` does what
the frontend script does (``frontend``, debconf 1.5.82):

1. load the databases named by the image's ``debconf.conf`` (:mod:`debconf_db`);
2. find the package (``DEBCONF_PACKAGE``, the script name ``PKG.postinst``, dpkg's
   ``tmp.ci/control``) and load the package's ``templates`` file beside the script;
3. for a ``preinst``/``postinst``, run the package's ``config`` script first
   (``config configure OLD-VERSION``, as ``dpkg-preconfigure`` would have), stopping with
   its status if it fails -- without saving anything, as debconf does; a Perl ``config``
   is deferred unless :mod:`perlconfig` recognises it as one dictionaries-common generates,
   :mod:`postfixconfig` as postfix's or :mod:`krb5config` as krb5-config's;
4. run the script again *in this interpreter* (``Invocation.spawn``; krb5-config's Perl
   postinst is run as its model, :mod:`krb5config`) with ``DEBIAN_HAS_FRONTEND=1`` and its stdin/stdout connected to a
   :class:`~nuwa.script.commands.debconf.confmodule.ConfModule` (the real confmodule shell
   library from the image runs unchanged and speaks the real protocol);
5. save the databases (``-old`` backups rotated, only files that changed are rewritten) and
   exit with the script's status.

The frontend is always the noninteractive one (see :mod:`debconf_confmodule`).
"""

from __future__ import annotations

import posixpath
import re

from nuwa.script.commands.debconf import krb5config, perlconfig, postfixconfig
from nuwa.script.commands.debconf.confmodule import ConfModule, Frontend
from nuwa.script.commands.debconf.db import ENC, ERRORS, TemplateError, load_databases
from nuwa.script.commands.debconf.questions import Questions
from nuwa.script.context import Defer, Invocation
from nuwa.script.fdtable import Desc
from nuwa.script.record import ScriptDeferred

FRONTEND = "/usr/share/debconf/frontend"
#: ``Invocation.state`` key: how many frontends are running (the databases are locked)
ACTIVE = "debconf.frontends"
#: ``Invocation.state`` key: the running confmodules' :class:`ConfModule` s, innermost last; a
#: program of the image that speaks the protocol through ``Debconf::Client::ConfModule``
#: under a running frontend (``pam-auth-update`` from a postinst) talks to the last one
CONFMODULES = "debconf.confmodules"
#: ``Invocation.state`` key the dpkg runner may set for a preinst: ``(directory, {member: bytes})``,
#: the package's control area dpkg extracted to ``/var/lib/dpkg/tmp.ci`` (never materialised)
CONTROL_AREA = "dpkg.control_area"


class ToFrontend(Desc):
    """The child's stdout: every complete line is a command the frontend answers at once."""

    used = True
    usage = "sent to debconf's frontend"

    def __init__(self, cm: ConfModule, replies: "FromFrontend"):
        self.cm = cm
        self.replies = replies
        self.pending = b""

    def write(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending and not self.cm.stopped:
            line, self.pending = self.pending.split(b"\n", 1)
            self.command(line)

    def command(self, line: bytes) -> None:
        reply = self.cm.handle(line.decode(ENC, ERRORS))
        self.replies.data += (reply + "\n").encode(ENC, ERRORS)  # communicate prints "$ret\n"

    def close(self) -> None:
        """The child exited: a last line without newline is still read (``<$r>``)."""
        if self.pending and not self.cm.stopped:
            line, self.pending = self.pending, b""
            self.command(line)
        if not self.cm.stopped:
            self.cm.finish()


class FromFrontend(Desc):
    """The child's stdin: the frontend's replies. Reading with none pending would block."""

    def __init__(self):
        self.data = bytearray()

    def _need(self) -> None:
        if not self.data:
            raise ScriptDeferred("the script reads from debconf's frontend with no reply pending (it would block)")

    def read(self, n: int = -1) -> bytes:
        # what is pending, possibly nothing: a program started with this stdin (or a deferred
        # one whose stdin is recorded) usually never reads it; only the shell's ``read``
        # (``readline``) waits for a reply
        n = len(self.data) if n < 0 else n
        out = bytes(self.data[:n])
        del self.data[:n]
        return out

    def readline(self) -> bytes:
        self._need()
        j = self.data.find(b"\n")
        end = len(self.data) if j < 0 else j + 1
        out = bytes(self.data[:end])
        del self.data[:end]
        return out


def _root_home(fs) -> str:
    try:
        for line in fs.read_bytes("/etc/passwd").decode(ENC, ERRORS).splitlines():
            f = line.split(":")
            if len(f) >= 6 and f[2] == "0":
                return f[5]
    except OSError:
        pass
    return "/root"


def _find_in_path(fs, env: dict[str, str], prog: str) -> bool:
    """``Debconf::Path::find``: an executable ``prog`` in ``PATH``."""
    for d in (env.get("PATH") or "").split(":"):
        try:
            st = fs.stat(posixpath.join(d or "/", prog))
        except (OSError, ValueError):
            continue
        if st.is_reg and st.st_mode & 0o111:
            return True
    return False


class FrontendRun:
    """One run of ``/usr/share/debconf/frontend`` against the image."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.fs = inv.fs
        area = inv.state.get(CONTROL_AREA)
        self.area = {posixpath.join(area[0], k): v for k, v in area[1].items()} if area else {}

    def read(self, path: str) -> str:
        """A file as the frontend sees it: dpkg's unmaterialised control area, else the image."""
        p = self.inv.path(path)
        if p in self.area:
            return self.area[p].decode(ENC, ERRORS)
        return self.fs.read_bytes(p).decode(ENC, ERRORS)

    def exists(self, path: str) -> bool:
        p = self.inv.path(path)
        return p in self.area or self.fs.exists(p)

    def package(self, script: str, action: str | None) -> tuple[str, bool]:
        env = self.inv.env
        if env.get("DEBCONF_PACKAGE"):
            return env["DEBCONF_PACKAGE"], False
        m = re.match(r"^.*/(.*?)\.(?:postinst|postrm|prerm)$", script, re.S)
        if m:
            return m.group(1), action == "triggered"
        if self.exists("/var/lib/dpkg/tmp.ci/control"):
            for line in self.read("/var/lib/dpkg/tmp.ci/control").split("\n"):
                if line.startswith("Package: "):
                    pkg = line[9:]
                    break
            else:
                pkg = ""
            if not env.get("PERL_DL_NONLAZY"):  # dpkg does not set it: every preinst gets the warning
                self.inv.err("PERL_DL_NONLAZY is not set, if debconf is running from a preinst script, this is not "
                             "safe at /usr/share/debconf/frontend line 41.\n")
            return pkg, False
        return None, False  # no package: templates searched beside the script

    def run_module(self, qs: Questions, fe: Frontend, owner: str, argv: list[str]) -> int:
        """``make_confmodule(@argv)`` then ``communicate`` until the child exits."""
        inv = self.inv
        path = inv.path(argv[0])
        try:
            st = self.fs.stat(path)
        except (OSError, ValueError):
            st = None
        if st is None or not st.is_reg or not st.st_mode & 0o111:
            raise ScriptDeferred(f"debconf's frontend cannot execute {argv[0]} (not an executable file in the image)")
        cm = ConfModule(qs, fe, owner, read_file=self.read)
        status = None
        try:
            # a Perl config generated by dictionaries-common, postfix's, or krb5-config's config and
            # postinst, is modelled, not interpreted (each model reads and recognises the text:
            # asked only for a Perl script, not for every shell script the frontend runs)
            if _is_perl(self.fs, path):
                status = perlconfig.run_config(inv, self.fs, path, cm)
                if status is None:
                    status = postfixconfig.run_config(inv, self.fs, path, cm, list(argv))
                if status is None:
                    status = krb5config.run_script(inv, self.fs, path, cm, list(argv))
        except Defer as d:
            raise ScriptDeferred(f"debconf's frontend runs {argv[0]}: {d.reason}") from None
        if status is not None:
            if not cm.stopped:
                cm.finish()  # the child exited: communicate's EOF
            return status
        replies = FromFrontend()
        to = ToFrontend(cm, replies)
        env = dict(inv.env)
        env["DEBIAN_HAS_FRONTEND"] = "1"  # ConfModule::init
        if inv.spawn is None:
            raise Defer("debconf's frontend needs an interpreter that can start its child")
        running = inv.state.setdefault(CONFMODULES, [])
        running.append(cm)
        try:
            status = inv.spawn(path, list(argv), env, {0: replies, 1: to})
        except Defer as d:
            raise ScriptDeferred(f"debconf's frontend runs {argv[0]}: {d.reason}") from None
        finally:
            running.remove(cm)
        stopped = cm.stopped  # after STOP the frontend answers "" and reads nothing more
        to.close()
        if replies.data and not stopped:
            # a reply the script never read (or the answer to a last command without newline,
            # written after it exited): whether the frontend's write of it meets a closed pipe
            # (SIGPIPE: ConfModule's handler makes the status 128) is a race, unknown offline
            raise ScriptDeferred(f"{argv[0]} exited with a debconf reply unread (the frontend's write "
                                 "of it races the exit: status 128 on SIGPIPE)")
        return status

    def run(self, args: list[str] | None = None) -> int:
        """The frontend with ``args`` (default: the invocation's arguments), its exit status."""
        inv = self.inv
        args = inv.argv[1:] if args is None else args
        if args and args[0] == "--":
            args = args[1:]
        if not args:
            raise Defer("debconf's frontend without a script to run")
        if inv.state.get(ACTIVE):
            inv.err('debconf: DbDriver "config": /var/cache/debconf/config.dat is locked by another process: '
                    "Resource temporarily unavailable\n")
            return 1
        dbs = load_databases(self.fs, inv.env, inv.umask, _root_home(self.fs))
        qs = Questions(dbs, inv.env, self.fs)
        fe = Frontend(_find_in_path(self.fs, inv.env, "mail"))
        inv.state[ACTIVE] = inv.state.get(ACTIVE, 0) + 1
        try:
            return self._run(args, qs, fe, dbs)
        except TemplateError as e:
            raise ScriptDeferred(f"debconf's frontend dies loading templates: {e}") from None
        finally:
            inv.state[ACTIVE] -= 1
            inv.out(bytes(fe.output))

    def _run(self, args: list[str], qs: Questions, fe: Frontend, dbs) -> int:
        script = args[0]
        package, no_title = self.package(script, args[1] if len(args) > 1 else None)
        if package is None:
            package = ""
            base = posixpath.basename(script)
            m = re.match(r"(.*)config$", script, re.S)
            for cand in [f"{script}.templates"] + ([f"{m.group(1)}templates"] if m else []) + \
                    [f"/usr/share/debconf/templates/{base}.templates"]:
                if self.exists(cand):
                    qs.load_templates(self.read(cand), package, cand)
                    break
        if package and not no_title:
            fe.default_title(package)
        m = re.match(r"^(.*[./])(?:preinst|postinst|prerm|postrm)$", script, re.S)
        if m and self.exists(m.group(1) + "templates"):
            qs.load_templates(self.read(m.group(1) + "templates"), package, m.group(1) + "templates")
        m = re.match(r"^(.*[./])(?:postinst|preinst)$", script, re.S)
        if m and self.exists(m.group(1) + "config"):
            config = m.group(1) + "config"
            if self.inv.path(config) in self.area:
                raise ScriptDeferred(f"debconf's frontend would run {config} from dpkg's control area")
            st = self.run_module(qs, fe, package, [config, "configure", args[2] if len(args) > 2 else ""])
            if st > 0:
                return st  # the frontend exits at once: nothing is saved
        st = self.run_module(qs, fe, package, args)
        dbs.save(self.fs, self.inv.umask)
        return st


def frontend(inv: Invocation) -> int:
    """``/usr/share/debconf/frontend SCRIPT ARGS``: see the module documentation."""
    if inv.path(inv.argv[0]) != FRONTEND:
        raise Defer(f"{inv.argv[0]} is not debconf's frontend")
    return FrontendRun(inv).run()


def debconf_escape(inv: Invocation) -> int:
    """``debconf-escape -e|-u``: escape or unescape backslashes and newlines on stdin."""
    esc = unesc = 0
    for a in inv.argv[1:]:
        if a in ("-e", "--escape"):
            esc = 1
        elif a in ("-u", "--unescape"):
            unesc = 1
        else:
            raise Defer(f"debconf-escape {a}: not modelled")
    if esc == unesc:
        inv.err("Usage: debconf-unescape -e|-u < input-text\n  -e, --escape      escape text\n"
                "  -u, --unescape    unescape text\nExactly one of -e or -u must be used.\n")
        return 1
    data = inv.stdin
    if esc:
        inv.out(data.replace(b"\\", b"\\\\").replace(b"\n", b"\\n"))
    else:
        # per line (Perl's <>), each "\X" decoded: "\n" is a newline, any other X itself
        for line in data.splitlines(keepends=True):
            inv.out(re.sub(rb"\\(.)", lambda m: b"\n" if m.group(1) == b"n" else m.group(1), line))
    return 0


def debconf_communicate(inv: Invocation) -> int:
    """``debconf-communicate [PACKAGE]``: protocol lines on stdin, each reply on stdout.

    debconf's own loop: every line is processed (even after ``STOP``), the exit status is the
    code of the last reply (127 with no input), and the databases are saved at the end.
    """
    args = inv.argv[1:]
    if any(a.startswith("-") for a in args):
        raise Defer("debconf-communicate options are not modelled")
    if inv.state.get(ACTIVE):
        inv.err('debconf: DbDriver "config": /var/cache/debconf/config.dat is locked by another process: '
                "Resource temporarily unavailable\n")
        return 1
    dbs = load_databases(inv.fs, inv.env, inv.umask, _root_home(inv.fs))
    qs = Questions(dbs, inv.env, inv.fs)
    fe = Frontend(_find_in_path(inv.fs, inv.env, "mail"))
    run = FrontendRun(inv)
    cm = ConfModule(qs, fe, args[0] if args else "unknown", read_file=run.read)
    code = 127
    lines = inv.stdin.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for raw in lines:
        ret = cm.handle(raw.decode(ENC, ERRORS))
        head = ret.split(" ", 1)[0]
        code = int(head) if head.isdigit() else 0
        inv.out(bytes(fe.output))  # what the frontend printed while answering comes first
        fe.output.clear()
        inv.out((ret + "\n").encode(ENC, ERRORS))
    cm.finish()
    dbs.save(inv.fs, inv.umask)
    return code & 0xFF


def _is_perl(fs, path: str) -> bool:
    """Whether the script at ``path`` starts with a ``#!`` line naming Perl."""
    try:
        h = fs.open_handle(path)
    except (OSError, ValueError):
        return False
    try:
        head = h.pread(0, 128)
    finally:
        h.close()
    return head.startswith(b"#!") and b"perl" in head.split(b"\n", 1)[0]
