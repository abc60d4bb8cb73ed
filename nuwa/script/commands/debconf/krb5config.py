"""krb5-config's Perl maintainer scripts (krb5-config 2.7, Debian 12): its debconf ``config``
and its ``postinst``, recognised by their text and modelled as what they do.

Both are Perl programs that ``use Debconf::Client::ConfModule``. Run by dpkg, the postinst's
``import`` of that module finds no ``DEBIAN_HAS_FRONTEND`` and execs
``/usr/share/debconf/frontend $0 @ARGV`` (``PERL_DL_NONLAZY=1`` set first):
:func:`stand_in` (as ``nuwa.script.commands.maintainer_stand_in``) gives that exec as a shell
line, so the runner of maintainer scripts starts the frontend model (:mod:`frontend`) as Perl
would. The frontend then runs the
``config`` (``configure OLD-VERSION``) and the ``postinst`` as its children; both come here
(:func:`run_script`) and talk to the same :class:`ConfModule` through
``Debconf::Client::ConfModule``'s functions (:class:`perlconfig.PerlClient`). Their standard
output is the protocol pipe (the Perl client does not move it): a child program printing on
it defers.

- ``config``: ``$no_dns = ! -x "/usr/bin/host"``; with ``host`` in the image the config asks
  DNS (``host -t txt``/``-t srv``; every path reaches one), which is the network of the booted
  machine: deferred with that reason. Otherwise: ``read_config`` of ``/etc/krb5.conf`` while
  ``read_conf`` is true (three range operators, Perl's ``...``; the realms and ``domain_realm``
  maps seeded by a ``BEGIN`` block), the guess from ``default_realm`` or ``dnsdomainname``
  (through ``/bin/sh -c``, as backticks run it), the noninteractive questions. The ``host``
  calls that still run without ``/usr/bin/host`` go through ``/bin/sh -c`` as well.
- ``postinst configure``: ``/etc/krb5.conf`` from the template if absent, rewritten line by
  line into ``krb5.conf.dpkg-new`` then renamed (``default_realm`` replaced, ``rdns = false``
  added for an upgrade from before 2.7), the realm's servers added when ``add_servers`` says
  so, and the trailing ``| sh`` of debhelper commands (empty in 2.7).

Defers: another text (SHA-256), Perl or the client module absent, anything Perl would warn
about (an undefined value compared, substituted or printed), a realm that is not a plain
pattern where Perl uses it as one, a result Perl's hash order would decide, a ``die``.
"""

from __future__ import annotations

import hashlib
import itertools
import re

from nuwa.script.commands._common import content_sha256
from nuwa.script.commands.debconf.confmodule import ConfModule
from nuwa.script.commands.debconf.db import ENC, ERRORS
from nuwa.script.commands.debconf.perlconfig import CLIENT, PERL, PerlClient
from nuwa.script.context import Defer, Invocation

#: SHA-256 of krb5-config 2.7's config and postinst (Debian 12)
KNOWN_CONFIG = {"2b484985e7a3bf9f38bfe807fd195d7a2f55f2869f0e05bc587bf7606d022688"}
KNOWN_POSTINST = {"a5735bd836a35cee23fc122908a81db91624d612f0f011a3007591759dca91d6"}
FRONTEND = "/usr/share/debconf/frontend"
CONF = "/etc/krb5.conf"
NEW = "/etc/krb5.conf.dpkg-new"
TEMPLATE = "/usr/share/kerberos-configs/krb5.conf.template"
HOST = "/usr/bin/host"
A = re.ASCII  # Perl's /d rules on byte strings: \s, \w, \b and /i are ASCII only

#: the config's BEGIN block
REALM_MAP = {r: 1 for r in ("1TS.ORG", "ANDREW.CMU.EDU", "ATHENA.MIT.EDU", "CS.CMU.EDU", "CSAIL.MIT.EDU",
                            "DEMENTIA.ORG", "IHTFP.ORG", "UTORONTO.CA", "ZONE.MIT.EDU", "stanford.edu")}
DOMAIN_MAP = {".CSAIL.MIT.EDU": "CSAIL.MIT.EDU", ".MEDIA.MIT.EDU": "MEDIA-LAB.MIT.EDU", ".MIT.EDU": "ATHENA.MIT.EDU",
              ".SLAC.STANFORD.EDU": "SLAC.STANFORD.EDU", ".STANFORD.EDU": "stanford.edu",
              ".TORONTO.EDU": "UTORONTO.CA", ".UTORONTO.CA": "UTORONTO.CA", ".WHOI.EDU": "ATHENA.MIT.EDU",
              "CSAIL.MIT.EDU": "CSAIL.MIT.EDU", "MEDIA.MIT.EDU": "MEDIA-LAB.MIT.EDU", "MIT.EDU": "ATHENA.MIT.EDU",
              "WHOI.EDU": "ATHENA.MIT.EDU"}


def _true(v: str | None) -> bool:
    """Perl's truth of a string: undef, "" and "0" are false."""
    return v is not None and v not in ("", "0")


def _uc(v: str) -> str:
    """Perl's ``uc`` of a byte string: ASCII letters only."""
    return v.encode(ENC, ERRORS).upper().decode(ENC, ERRORS)


class FlipFlop:
    """One instance of Perl's ``LEFT ... RIGHT`` (three dots: RIGHT is not tried on the line
    where LEFT became true; the line where RIGHT matches is still in the range)."""

    def __init__(self, left: str, right: str, flags: int = 0):
        self.left, self.right = re.compile(left, A | flags), re.compile(right, A | flags)
        self.on = False

    def __call__(self, line: str) -> bool:
        if not self.on:
            self.on = self.left.search(line) is not None
            return self.on
        if self.right.search(line):
            self.on = False
        return True


class _Script:
    """What both scripts share: the client, the image, children started as Perl starts them."""

    def __init__(self, inv: Invocation, fs, cm: ConfModule, argv: list[str], name: str):
        self.inv, self.fs, self.c = inv, fs, PerlClient(cm)
        self.argv = argv
        self.name = name
        self.env = dict(inv.env, DEBIAN_HAS_FRONTEND="1")

    def scalar(self, command: str, *args: str) -> str:
        """A client function in scalar context whose value is used: undef would make Perl warn."""
        v = self.send(command, *args)
        if v is None:
            raise Defer(f"{self.name}: {command.upper()} {' '.join(args)} answered without a value (Perl warns "
                        "about undef)")
        return v

    def send(self, command: str, *args: str) -> str | None:
        if any("\n" in a for a in args):
            raise Defer(f"{self.name}: a newline in the debconf command {command.upper()}")
        return self.c.scalar(command, *args)

    def child(self, argv: list[str], stdin: bytes = b"") -> tuple[int, bytes]:
        """A program started with ``system``/backticks/``open |``: its stderr passed on."""
        status, out, err = self.inv.run(argv, stdin, self.env)
        self.inv.err(err)
        return status, out

    def system(self, argv: list[str], stdin: bytes = b"") -> int:
        """``system``/``open(FH, "| ...")``: stdout is the protocol pipe to the frontend."""
        status, out = self.child(argv, stdin)
        if out:
            raise Defer(f"{self.name}: `{' '.join(argv)}` prints into debconf's protocol pipe")
        return status

    def backticks(self, command: str) -> str:
        return self.child(["/bin/sh", "-c", command])[1].decode(ENC, ERRORS)

    def lstat(self, path: str):
        try:
            return self.fs.lstat(path)
        except (OSError, ValueError):
            return None

    def stat(self, path: str):
        try:
            return self.fs.stat(path)
        except (OSError, ValueError):
            return None

    def read_lines(self, path: str) -> list[str] | None:
        """``open(FH, PATH)`` then ``<FH>`` line by line (None if it cannot be opened)."""
        try:
            data = self.fs.read_bytes(path).decode(ENC, ERRORS)
        except (OSError, ValueError):
            return None
        return re.findall(r"[^\n]*\n|[^\n]+\Z", data)

    def write(self, path: str, text: str) -> None:
        """``open(OUT, ">PATH")``, print, close: created 0666 & ~umask or truncated in place."""
        try:
            self.fs.write_bytes(path, text.encode(ENC, ERRORS), 0o666 & ~self.inv.umask)
        except OSError as e:
            raise Defer(f"{self.name} dies: cannot write {path} ({e})") from None

    def rename(self, src: str, dst: str) -> None:
        try:
            self.fs.rename(src, dst)
        except OSError as e:
            raise Defer(f"{self.name} dies: cannot rename {src} ({e})") from None


class Krb5Config(_Script):
    """The config (``configure|reconfigure OLD-VERSION``) under the noninteractive frontend."""

    def run(self) -> int:
        st = self.stat(HOST)
        if st is not None and (st.is_dir or st.st_mode & 0o111):
            raise Defer(f"{self.name}: {HOST} is in the image, so the config asks DNS for the realm's Kerberos "
                        "servers (host -t srv/txt): the booted machine's network answers")
        realm_map, domain_map = dict(REALM_MAP), dict(DOMAIN_MAP)
        guess, guess_good = None, False
        if not _true(self.send("version", "2.0")):
            raise Defer(f"{self.name} dies: Failed to start debconf")
        self.send("settitle", "krb5-config/title")
        if self.scalar("get", "krb5-config/read_conf") == "true":
            found = self.read_config(CONF)
            if found is not None:
                realm_map, domain_map, g, good = found
                guess, guess_good = (g if g is not None else guess), guess_good or good
        if not _true(guess):
            guess = self.send("get", "krb5-config/default_realm")
        # `unless ($guess || $no_dns)`: $no_dns is true here
        if not _true(guess):
            guess = _uc(self.backticks("dnsdomainname 2>/dev/null"))
            if guess.endswith("\n"):
                guess = guess[:-1]
            # the exact key, else `map { ... $guess = $domain_map{$_} if $guess =~ /\Q$a\E$/ }`
            # over the dotted keys in Perl's hash order (random per run): only whether the guess
            # ends true matters below (`if ($guess) { exit(0) if $no_dns }`; it is never stored)
            if guess in domain_map:
                guess = domain_map[guess]
            else:
                guess = self._suffix_guess(guess, domain_map)
        if _true(guess):
            return 0  # `if ($no_dns) { exit(0) }`: the postinst has host
        self.send("input", "medium" if guess_good else "critical", "krb5-config/default_realm")
        self.send("go")
        guess = self.send("get", "krb5-config/default_realm")
        add_srv_guess = self.send("get", "krb5-config/add_servers_realm")
        if _true(add_srv_guess) and add_srv_guess != self._defined(guess, "ne"):
            for q in ("add_servers", "kerberos_servers", "admin_server"):
                self.send("reset", f"krb5-config/{q}")
        if not realm_map.get(self._defined(guess, "hash key")):
            if self.host_srv(guess):
                self.send("subst", "krb5-config/add_servers", "dns",
                          self._defined(self.send("metaget", "krb5-config/found_dns", "Extended_description"), "subst"))
            else:
                self.send("subst", "krb5-config/add_servers", "dns",
                          self._defined(self.send("metaget", "krb5-config/no_dns", "Extended_description"), "subst"))
                if self._defined(add_srv_guess, "eq") != guess:
                    self.send("set", "krb5-config/add_servers", "true")
            self.send("input", "low", "krb5-config/add_servers")
            self.send("set", "krb5-config/add_servers_realm", guess)
            self.send("go")
            if self.scalar("get", "krb5-config/add_servers") == "true":
                self.send("subst", "krb5-config/kerberos_servers", "realm", guess)
                self.send("subst", "krb5-config/admin_server", "realm", guess)
                self.send("input", "high", "krb5-config/kerberos_servers")
                admin_default = self.send("get", "krb5-config/admin_server")
                admin = self.admin_srv(guess)
                if not _true(admin_default) and _true(admin):
                    self.send("set", "krb5-config/admin_server", admin)
                    self.send("input", "medium", "krb5-config/admin_server")
                elif _true(admin_default) and _true(admin) and admin_default == admin:
                    self.send("input", "medium", "krb5-config/admin_server")
                else:
                    self.send("input", "high", "krb5-config/admin_server")
                self.send("go")
        self.send("set", "krb5-config/read_conf", "false")
        return 0

    def _defined(self, v: str | None, use: str) -> str:
        if v is None:
            raise Defer(f"{self.name}: an undefined value in {use} (Perl warns)")
        return v

    def _suffix_guess(self, guess: str, domain_map: dict[str, str]) -> str:
        """The ``map`` over the dotted keys: each match replaces ``$guess``, the later keys are
        tested on the new one. Every order of the keys that could match is tried; orders whose
        results differ in truth defer (no value is kept, see the caller)."""
        def match(g: str, k: str) -> bool:  # /\Q$a\E$/: at the end or before a final newline
            return g.endswith(_uc(k)) or g.endswith(_uc(k) + "\n")
        keys = [k for k in domain_map if k.startswith(".")]
        if not any(match(guess, k) for k in keys):
            return guess
        relevant = [k for k in keys if any(match(x, k) for x in [guess, *domain_map.values()])]
        if len(relevant) > 7:
            raise Defer(f"{self.name}: the realm guessed from the DNS domain depends on Perl's hash order")
        results = {}
        for order in itertools.permutations(relevant):
            g = guess
            for k in order:
                if match(g, k):
                    g = domain_map[k]
            results[_true(g)] = g
        if len(results) > 1:
            raise Defer(f"{self.name}: whether a realm is guessed from the DNS domain depends on Perl's hash order")
        return results.popitem()[1]

    def host_srv(self, h: str | None) -> bool:
        """``host_srv``: two ``host -t srv`` calls through ``/bin/sh -c`` (``$h`` in double quotes)."""
        h = self._defined(h, "string")
        for proto in ("tcp", "udp"):
            out = self.backticks(f'host -t srv "_kerberos._{proto}.{h}" 2>/dev/null')
            if re.search(r"has srv record", out, re.I | A):
                return True
        return False

    def admin_srv(self, realm: str | None) -> str | None:
        """``admin_srv``: ``host -t srv _kerberos-adm._tcp.\\Q$realm\\E``."""
        q = re.sub(r"([^A-Za-z0-9_])", r"\\\1", self._defined(realm, "string"))  # quotemeta of a byte string
        out = self.backticks(f"host -t srv _kerberos-adm._tcp.{q} 2>/dev/null")
        m = re.search(r"has srv record.* (\S+)\.\s*$", out, re.I | A)
        return m.group(1) if m else None

    def read_config(self, path: str):
        """``read_config``: None if it cannot open PATH (the maps are kept), else the maps
        read, the guess (None if no line set it) and whether it was set."""
        lines = self.read_lines(path)
        if lines is None:
            return None
        realm_map: dict[str, int] = {}
        domain_map: dict[str, str] = {}
        guess, good = None, False
        lib = FlipFlop(r"^\s*\[libdefaults\]", r"^\s*\[(?!libdefaults).*\]")
        lib.left = re.compile(r"^\s*\[libdefaults\]", re.I | A)  # only the left one has /i
        realms = FlipFlop(r"^\s*\[realms\]", r"^\s*\[(?!realms)", re.I)
        dr = FlipFlop(r"^\s*\[domain_realm\]", r"^\s*\[(?!domain_realm).*\]")
        dr.left = re.compile(r"^\s*\[domain_realm\]", re.I | A)
        for line in lines:
            if line.endswith("\n"):
                line = line[:-1]
            line = re.sub(r"#.*$", "", line, count=1)  # `.` stops at no newline here: chomped
            if lib(line) and re.search(r"^[^#;]+=", line):
                f = _split_eq(line)
                if len(f) < 2:
                    raise Defer(f"{self.name}: `{line}` in {path} has no value after '=' (Perl warns)")
                f0, f1 = re.sub(r"\s", "", f[0], flags=A), re.sub(r"\s", "", f[1], flags=A)
                if re.search(r"default[-_]realm", f0):
                    guess, good = f1, True
            if realms(line):
                m = re.search(r"^\s*([^\s=]+)\s*=\s*\{", line, A)
                if m:
                    realm_map[m.group(1)] = 1
            if dr(line):
                f = _split_eq(line)
                if len(f) != 2:
                    continue
                domain_map[_uc(re.sub(r"\s", "", f[0], flags=A))] = re.sub(r"\s", "", f[1], flags=A)
        return realm_map, domain_map, guess, good


def _split_eq(line: str) -> list[str]:
    """Perl's ``split('=')`` of ``$_``: trailing empty fields dropped."""
    f = line.split("=")
    while f and f[-1] == "":
        f.pop()
    return f


class Krb5Postinst(_Script):
    """The postinst with its arguments, as the frontend's child."""

    def run(self) -> int:
        args = self.argv
        if not args:
            raise Defer(f"{self.name}: no arguments (Perl warns about undef)")
        if args[0] in ("configure", "reconfigure"):
            status = self.configure(args)
            if status is not None:
                return status
        # `open(CMD, "| sh")`: the debhelper commands (none in 2.7), `exit $?>>8`
        # sh reads the text from the pipe; nothing in it reads standard input, so `sh -c TEXT`
        # runs the same commands (the arguments joined unquoted, as the script does)
        status = self.system(["sh", "-c", "set -e\nset -- " + " ".join(args) + "\n" + "\n"])
        return status & 0xFF

    def configure(self, args: list[str]) -> int | None:
        if not _true(self.send("version", "2.0")):
            raise Defer(f"{self.name} dies: Failed to start debconf")
        self.send("set", "krb5-config/read_conf", "true")
        defrealm = self.send("get", "krb5-config/default_realm")
        st = self.lstat(CONF)
        if st is not None and st.is_lnk:
            return 0
        st = self.stat(CONF)
        if st is None or not st.is_reg:
            if self.system(["cp", TEMPLATE, CONF]) != 0:
                raise Defer(f"{self.name} dies: Unable to create {CONF} (its $! is left over from cp's run)")
        fix_rdns = False
        if len(args) > 1 and _true(args[1]):
            fix_rdns = self.system(["dpkg", "--compare-versions", args[1], "lt", "2.7"]) == 0
        lines = self.read_lines(CONF)
        if lines is None:
            raise Defer(f"{self.name} dies: Unable to open krb5.conf")
        if defrealm is None:
            raise Defer(f"{self.name}: default_realm answered without a value (Perl warns in the realm pattern)")
        if not re.fullmatch(r"[A-Za-z0-9_.-]*", defrealm):
            raise Defer(f"{self.name}: the realm {defrealm!r} is used as a Perl pattern (not modelled)")
        out: list[str] = []
        in_conf = in_lib = False
        lib = FlipFlop(r"^\s*\[libdefaults\]", r"^\s*\[(?!libdefaults)", re.I)
        realms = FlipFlop(r"^\s*\[realms\]", r"^\s*\[(?!realms)", re.I)
        realm_line = re.compile(r"^\s*" + defrealm + r"\s*=\s*\{", A)
        for line in lines:
            leaving = False
            if lib(line):
                in_lib = True
                if re.search(r"^\s*[#;]", line, A):
                    out.append(line)  # `next`: the continue block prints it
                    continue
                m = re.search(r"\bdefault_realm\s*=\s*(\S+)", line, A)
                if _true(defrealm) and m and m.group(1) != defrealm:
                    line = re.sub(r"default_realm(\s*)=(.*)$", lambda n: "default_realm" + n.group(1) + "= " + defrealm,
                                  line, count=1, flags=re.I | A)
                if re.search(r"\brdns\s*=", line, A):
                    fix_rdns = False
            if re.search(r"^\s*\[(?!libdefaults)", line, re.I | A):
                leaving, in_lib = in_lib, False
            if fix_rdns and leaving:
                out.append("\trdns = false\n")
            if realms(line) and realm_line.search(line):
                in_conf = True
            out.append(line)
        self.write(NEW, "".join(out))
        self.rename(NEW, CONF)
        add_servers = self.send("get", "krb5-config/add_servers")
        if add_servers is None:
            raise Defer(f"{self.name}: add_servers answered without a value (Perl warns)")
        if add_servers == "true" and not in_conf:
            self.add_realm(defrealm)
        return None

    def add_realm(self, defrealm: str) -> None:
        """The ``realm_config`` block: the realm's stanza after the first ``[realms]``."""
        servers = self.send("get", "krb5-config/kerberos_servers")
        self.send("reset", "krb5-config/kerberos_servers")
        if not _true(servers):
            return
        admin = self.send("get", "krb5-config/admin_server")
        self.send("reset", "krb5-config/admin_server")
        try:
            text = self.fs.read_bytes(CONF).decode(ENC, ERRORS)
        except (OSError, ValueError):
            raise Defer(f"{self.name} dies: Unable to open krb5.conf") from None
        if text == "":
            raise Defer(f"{self.name}: an empty {CONF} reads as undef (Perl warns)")
        stanza = f"\t{defrealm} = {{\n" + "".join(f"\t\tkdc = {s}\n" for s in re.findall(r"[^ \t\n\r\f\v]+", servers))
        if _true(admin):
            stanza += f"\t\tadmin_server = {admin}\n"
        stanza += "\t}"
        self.write(NEW, text.replace("[realms]", "[realms]\n" + stanza, 1))
        self.rename(NEW, CONF)


def run_script(inv: Invocation, fs, path: str, cm: ConfModule, argv: list[str]) -> int | None:
    """Run krb5-config's config or postinst at ``path`` with ``argv`` as the frontend's child
    talking to ``cm``; None if ``path`` is neither (the caller goes on as before). Raises
    :class:`Defer` with the reason where the run reaches something not modelled."""
    digest = content_sha256(fs, path)
    if digest not in KNOWN_CONFIG and digest not in KNOWN_POSTINST:
        return None
    for need in (PERL, CLIENT):
        if not fs.exists(need):
            raise Defer(f"{path}: a Perl script, and {need} is not in the image")
    cls = Krb5Config if digest in KNOWN_CONFIG else Krb5Postinst
    return cls(inv, fs, cm, list(argv[1:]), path.rsplit("/", 1)[-1]).run()


def stand_in(data: bytes, env: dict[str, str]) -> str | None:
    """The shell line that does what a recognised Perl maintainer script does first when dpkg
    runs it: ``Debconf::Client::ConfModule``'s ``import`` execs debconf's frontend on it
    (``$0 @ARGV``) with ``PERL_DL_NONLAZY=1``. None for a script not recognised here; raises
    :class:`Defer` where the import would not exec the frontend (one is running already:
    ``DEBIAN_HAS_FRONTEND``; ``DEBCONF_USE_CDEBCONF``: cdebconf's)."""
    if hashlib.sha256(data).hexdigest() not in KNOWN_POSTINST:
        return None
    if env.get("DEBIAN_HAS_FRONTEND"):
        raise Defer("krb5-config's Perl postinst under a running debconf frontend talks on its own stdout")
    if env.get("DEBCONF_USE_CDEBCONF"):
        raise Defer("DEBCONF_USE_CDEBCONF: the Perl postinst would exec cdebconf")
    return f'PERL_DL_NONLAZY=1 exec {FRONTEND} "$0" "$@"\n'
