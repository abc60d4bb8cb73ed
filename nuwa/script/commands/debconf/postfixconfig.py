"""postfix's debconf ``config`` (a Perl program), run by debconf's frontend: recognised by its
text and modelled as what it does with the debconf database and the image.

debconf's frontend runs a package's ``config`` before its ``preinst`` and ``postinst`` (see
:mod:`frontend`). postfix 3.7's ``config`` (Debian 12) is a 441-line Perl state machine over
its questions (``main_mailer_type``, ``mailname``, ``relayhost``, ``root_address``,
``destinations``, ``chattr``, ``mynetworks``, ``procmail``, ``mailbox_limit``,
``recipient_delim``, ``protocols``): each state seeds its question's value (from
``/etc/mailname``, ``hostname --fqdn``/``--domain``, ``getent passwd 1000``, ``postconf -hx``,
the ``-x`` tests of ``/usr/bin/procmail`` and ``/proc/sys/net/ipv*``), asks ``INPUT``, and moves
on when the question is not shown, then touches ``/var/spool/postfix/restart`` (``reload`` for
``reconfigure``). The frontend Nuwa models is the noninteractive one, which never shows a
question (``INPUT`` answers 30): only that path is followed, and any other answer defers.

The programs the config starts run through the interpreter's own models (``Invocation.run``:
the backticks as ``/bin/sh -c``, the pipes exec'd directly), so an unmodelled one (postconf,
lsb_release) or a host name only DNS knows defers the config with that reason. Guards: the
config's SHA-256 (another version is not recognised: the frontend defers it as before), Perl
and ``Debconf::Client::ConfModule`` present; anything that would make Perl warn (an undefined
value compared, chomped or sent) or a ``SET`` of a multi-line value defers.
"""

from __future__ import annotations

import re

from nuwa.script.commands._common import content_sha256
from nuwa.script.commands.debconf.confmodule import ConfModule
from nuwa.script.commands.debconf.perlconfig import CLIENT, PERL, PerlClient
from nuwa.script.context import Defer, Invocation

#: SHA-256 of postfix's config (3.7.11-0+deb12u1, Debian 12)
KNOWN_CONFIG = {"fd43c647b32dfb17b5f3de72cacdff1efaaa732dc8becc0a5e4641cf6013c635"}
INTERNET, SMARTHOST, SATELLITE = "Internet Site", "Internet with smarthost", "Satellite system"
PROCMAIL, POSTCONF, MAINCF = "/usr/bin/procmail", "/usr/sbin/postconf", "/etc/postfix/main.cf"


def _true(v: str | None) -> bool:
    return v is not None and v not in ("", "0")


class PostfixConfig:
    """One run of the config with ``argv`` (``configure|reconfigure OLD-VERSION``)."""

    def __init__(self, inv: Invocation, fs, cm: ConfModule, argv: list[str]):
        self.inv, self.fs, self.c = inv, fs, PerlClient(cm)
        self.argv = argv + [""] * (2 - len(argv))
        self.env = dict(inv.env, DEBIAN_HAS_FRONTEND="1")

    # ---- Perl's view -----------------------------------------------------------------------
    def scalar(self, command: str, *args: str) -> str:
        """A ConfModule function in scalar context whose value is compared or used: undef would
        make Perl warn (``use warnings``), so it defers."""
        v = self.c.scalar(command, *args)
        if v is None:
            raise Defer(f"postfix config: {command.upper()} {' '.join(args)} answered without a value "
                        "(Perl warns about undef)")
        return v

    def send(self, command: str, *args: str) -> None:
        if any("\n" in a for a in args):
            raise Defer(f"postfix config: a newline in the debconf command {command.upper()}")
        self.c.call(command, *args)

    def input(self, priority: str, question: str) -> None:
        """``$noninteractive = ((input(...))[0] == 30)``: only the not-shown path is modelled."""
        code = self.c.call("input", priority, question)[0]
        if code != "30":
            raise Defer(f"postfix config: INPUT {question} answered {code} (a shown question: the "
                        "interactive path is not modelled)")

    def _stat(self, path: str):
        try:
            return self.fs.stat(path)
        except (OSError, ValueError):
            return None

    def is_file(self, path: str) -> bool:  # -f
        st = self._stat(path)
        return st is not None and st.is_reg

    def is_dir(self, path: str) -> bool:  # -d
        st = self._stat(path)
        return st is not None and st.is_dir

    def executable(self, path: str) -> bool:  # -x as root: a directory or any execute bit
        st = self._stat(path)
        return st is not None and (st.is_dir or bool(st.st_mode & 0o111))

    def backticks(self, command: str) -> str:
        """```command``` (shell metacharacters: ``/bin/sh -c``): its output, its stderr passed on."""
        _st, out, err = self.inv.run(["/bin/sh", "-c", command], b"", self.env)
        self.inv.err(err)
        return out.decode("utf-8", "surrogateescape")

    def pipe_lines(self, command: str) -> list[str]:
        """``open my $fh, '-|', "CMD ARGS"`` (no metacharacters: exec'd directly), its lines."""
        _st, out, err = self.inv.run(command.split(), b"", self.env)
        self.inv.err(err)
        return out.decode("utf-8", "surrogateescape").splitlines(keepends=True)

    def hostname(self, option: str, fallback: str) -> str:
        """``my $x = `hostname --OPTION 2>/dev/null` || "FALLBACK"; chomp $x;``"""
        out = self.backticks(f"hostname --{option} 2>/dev/null")
        value = out if _true(out) else fallback
        return value[:-1] if value.endswith("\n") else value

    def first_line_chomped(self, command: str) -> str:
        lines = self.pipe_lines(command)
        if not lines:
            raise Defer(f"postfix config: `{command}` printed nothing (Perl warns about undef)")
        return lines[0][:-1] if lines[0].endswith("\n") else lines[0]

    # ---- the states ----------------------------------------------------------------------------
    def run(self) -> None:
        self.send("version", "2")  # version(2.0): Perl prints the number 2.0 as "2"
        self.send("capb", "backup")
        self.send("title", "Postfix Configuration")
        distribution = self.backticks("lsb_release -is 2>/dev/null").lower()  # lc: the byte string's ASCII
        if distribution == "":
            distribution = "debian"
        state = "start"
        while state != "done":
            state = getattr(self, "state_" + state.replace("-", "_"))(distribution)

    def state_start(self, distribution: str) -> str:
        if self.scalar("fget", "postfix/main_mailer_type", "isdefault") == "true" and self.is_file(MAINCF):
            self.send("set", "postfix/main_mailer_type", "No configuration")
        pri = "medium" if (self.argv[1] != "" and distribution == "ubuntu") else "high"
        self.input(pri, "postfix/main_mailer_type")
        if self.scalar("get", "postfix/main_mailer_type") == "No configuration":
            self.send("fset", "postfix/newaliases", "run", "false")
            return "ending-setup"
        return "mailname"

    def state_mailname(self, _d: str) -> str:
        mailname = None
        if self.is_file("/etc/mailname"):
            try:
                data = self.fs.read_bytes("/etc/mailname").decode("utf-8", "surrogateescape")
            except OSError:
                data = None  # open fails: $mailname stays undef
            if data is not None:
                if data == "":
                    raise Defer("postfix config: /etc/mailname is empty (Perl warns chomping undef)")
                line = data.split("\n", 1)[0]
                mailname = line
        if mailname is None or mailname == "":
            mailname = self.hostname("fqdn", "localdomain")
        if not mailname.isascii():
            raise Defer("postfix config: a non-ASCII mail name (Perl's lc on bytes) is not modelled")
        if mailname.lower() in ("ubuntu.com", "debian.org"):
            self.send("fset", "postfix/mailname", "isdefault", "true")
            mailname = self.hostname("fqdn", "localdomain")
        if self.scalar("fget", "postfix/mailname", "isdefault") == "true":
            self.send("set", "postfix/mailname", mailname)
        self.input("high", "postfix/mailname")
        return "relayhost"

    def state_relayhost(self, _d: str) -> str:
        mailertype = self.scalar("get", "postfix/main_mailer_type")
        if mailertype in (SMARTHOST, SATELLITE):
            if self.scalar("fget", "postfix/relayhost", "isdefault") == "true":
                self.send("set", "postfix/relayhost", "smtp." + self.hostname("domain", "localdomain"))
            self.input("high", "postfix/relayhost")
        return "root"

    def state_root(self, _d: str) -> str:
        if self.scalar("fget", "postfix/root_address", "isdefault") == "true":
            lines = self.pipe_lines("getent passwd 1000")
            if len(lines) > 1:  # $#l > 0: two lines or more (one user never gives that)
                raise Defer("postfix config: `getent passwd 1000` printed several lines (a SET with a newline)")
        self.input("medium", "postfix/root_address")
        return "destinations"

    def state_destinations(self, _d: str) -> str:
        mailertype = self.scalar("get", "postfix/main_mailer_type")
        hostname = self.hostname("fqdn", "localhost")
        domain = self.hostname("domain", "localdomain")
        got = self.c.scalar("get", "postfix/mailname")
        mailname = got if _true(got) else "localhost"
        if self.scalar("fget", "postfix/destinations", "set") == "true":
            if self.executable(POSTCONF) and self.is_file(MAINCF):
                self.send("set", "postfix/destinations", self.first_line_chomped("postconf -hx mydestination"))
        else:
            if mailertype == INTERNET:
                if mailname == hostname:
                    dest = ", ".join(("$myhostname", mailname, "localhost." + domain, ", localhost"))
                else:
                    dest = ", ".join(("$myhostname", mailname, hostname, "localhost." + domain + ", localhost"))
            else:
                dest = ", ".join(("$myhostname", hostname, "localhost." + domain + ", localhost"))
                if not _perl_suffix_match(hostname, mailname):
                    dest = mailname + ", " + dest
            self.send("set", "postfix/destinations", dest)
            self.send("fset", "postfix/destinations", "set", "true")
        self.input("low" if mailertype == "Local only" else "medium", "postfix/destinations")
        return "chattr"

    def state_chattr(self, _d: str) -> str:
        self.input("medium", "postfix/chattr")
        return "mynetworks"

    def state_mynetworks(self, _d: str) -> str:
        if self.executable(POSTCONF) and self.is_file(MAINCF):
            self.send("set", "postfix/mynetworks", self.first_line_chomped("postconf -hx mynetworks"))
        self.input("low", "postfix/mynetworks")
        return "procmail"

    def state_procmail(self, _d: str) -> str:
        if self.scalar("fget", "postfix/procmail", "isdefault") == "true":
            self.send("set", "postfix/procmail", "true" if self.executable(PROCMAIL) else "false")
        if self.executable(PROCMAIL):
            self.input("low", "postfix/procmail")
        return "mailbox_limit"

    def state_mailbox_limit(self, _d: str) -> str:
        self.input("low", "postfix/mailbox_limit")
        return "recipient_delim"

    def state_recipient_delim(self, _d: str) -> str:
        self.input("low", "postfix/recipient_delim")
        return "protocols"

    def state_protocols(self, _d: str) -> str:
        if self.executable(POSTCONF) and self.is_file(MAINCF):
            self.send("set", "postfix/protocols", self.first_line_chomped("postconf -hx inet_protocols"))
        elif self.scalar("fget", "postfix/protocols", "isdefault") == "true":
            six, four = self.is_dir("/proc/sys/net/ipv6"), self.is_dir("/proc/sys/net/ipv4")
            protos = "all" if six and four else "ipv6" if six else "ipv4" if four else None
            if protos:
                self.send("set", "postfix/protocols", protos)
        self.input("low", "postfix/protocols")
        return "ending-setup"

    def state_ending_setup(self, _d: str) -> str:
        # sysopen my $fh, PATH, O_CREAT (O_RDONLY): made 0666 & ~umask when missing; a failure is ignored
        path = "/var/spool/postfix/reload" if self.argv[0] == "reconfigure" else "/var/spool/postfix/restart"
        try:
            st = self.fs.lstat(path)
        except (OSError, ValueError):
            st = None
        if st is not None and st.is_lnk:
            raise Defer(f"postfix config: {path} is a symbolic link (O_CREAT follows it); not modelled")
        if st is None:
            try:
                self.fs.write_bytes(path, b"", 0o666 & ~self.inv.umask)
            except OSError:
                pass
        return "done"


def _perl_suffix_match(hostname: str, mailname: str) -> bool:
    """``$hostname =~ m/(^|[\\.])$mailname$/``: the mail name is interpolated as a pattern."""
    if not re.fullmatch(r"[A-Za-z0-9.-]+", mailname):
        raise Defer(f"postfix config: the mail name {mailname!r} used as a Perl pattern is not modelled")
    # in both dialects '.' is any character but a newline and '-' a literal; Perl's '$' also
    # matches before a final newline
    return re.search(r"(^|[.])" + mailname + r"(?=\n?\Z)", hostname) is not None


def run_config(inv: Invocation, fs, path: str, cm: ConfModule, argv: list[str]) -> int | None:
    """Run postfix's config at ``path`` with ``argv`` as the frontend's child talking to ``cm``.

    None if ``path`` is not that config (the caller defers as before); raises :class:`Defer`
    with the reason where the run reaches something not modelled.
    """
    if content_sha256(fs, path) not in KNOWN_CONFIG:
        return None
    for need in (PERL, CLIENT):
        if not fs.exists(need):
            raise Defer(f"{path}: a Perl config, and {need} is not in the image")
    PostfixConfig(inv, fs, cm, list(argv[1:])).run()
    return 0

