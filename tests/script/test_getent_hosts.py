"""getent hosts/ahosts/ahostsv4/ahostsv6 (glibc 2.36) against the real getent on a dormant tree.

A bookworm minbase tree with libnss-myhostname is copied twice; each case restores ``/etc`` on
both from a pristine copy, writes the same /etc/hosts, nsswitch.conf hosts line, host.conf and
hostname on both, then runs the same command lines with real ``sh`` in a chroot of one copy
under ``unshare -n -u`` (no network, as a dormant image has none: DNS cannot be reached and no
packet leaves; the host name of the new UTS namespace set from the copy's /etc/hostname, as a
booted image's would be) and with Nuwa's interpreter on the other, comparing status, stdout
and stderr of every line and ``/etc`` after. What the booted machine's network decides (DNS,
myhostname, AI_ADDRCONFIG, the order of several addresses) the model defers; a command line
may defer only for those reasons and only where the judge's own answer shows the network would
decide (:func:`network_decides`); :func:`test_sources_after_return_are_not_reached` and
:func:`test_files_hits_are_judged` check that what the files decide is answered.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from registry_harness import ENV, ShellPair


class HostsPair(ShellPair):
    PACKAGES = ("libnss-myhostname",)
    DIRS = ["etc"]
    FILES: list[str] = []

    def run_real(self, cmd, env=None):
        try:
            hn = open(os.path.join(self.real, "etc/hostname"), "rb").read().split()[0].decode()
        except (OSError, IndexError):
            hn = "localhost"
        p = subprocess.run(["unshare", "-n", "-u", "sh", "-c", 'hostname "$1" && exec chroot "$2" /bin/sh -c "$3"',
                            "sh", hn, self.real, cmd], env=env or ENV, capture_output=True, timeout=self.TIMEOUT,
                           stdin=subprocess.DEVNULL)
        return p.returncode, p.stdout, p.stderr

    def check(self, steps, setup=None, normalize=None, env=None):
        """Each command line on both sides; a deferral is allowed only for the network's answers
        (DNS, myhostname, AI_ADDRCONFIG, the RFC 3484 order), and only where the judge's own
        output shows the network would decide (see :func:`network_decides`)."""
        self.reset(setup)
        hosts_line = _hosts_line(self.model)
        for cmd in steps:
            real = self.run_real(cmd)
            model = self.run_model(cmd)
            if self.last.deferred_whole or self.last.deferred_commands:
                reason = self.last.reason + " ".join(d.reason for d in self.last.deferred_commands)
                assert network_decides(cmd, real, reason, hosts_line), (cmd, real, reason)
                self.deferred_steps += 1
                continue
            assert model == real, f"{cmd}:\nmodel {model}\nreal  {real}"
            self.judged_steps += 1
        fa, fb = self.facts(self.real), self.facts(self.model)
        assert fa == fb

    judged_steps = 0
    deferred_steps = 0


def _hosts_line(root: str) -> str:
    try:
        text = open(os.path.join(root, "etc/nsswitch.conf")).read()
    except OSError:
        return "files dns"  # glibc's default
    return next((ln.split(":", 1)[1] for ln in text.splitlines() if ln.startswith("hosts:")), "files dns")


def network_decides(cmd: str, real, reason: str, hosts_line: str) -> bool:
    """The judge's side of a deferral: the booted machine's network would decide this answer.
    DNS and myhostname: the source is on the image's (or -s's) hosts line and the offline judge
    found nothing for some key; AI_ADDRCONFIG: ahosts* without -A; the RFC 3484 order: the
    judge printed more than one address."""
    words = cmd.split()
    spec = cmd.split(" -s ", 1)[1].split(" hosts")[0] if " -s " in cmd else ""
    if spec and "[" not in spec and spec.strip("'").split(":")[0] in ("hosts", spec.strip("'")):
        # getent -s SOURCES or -s hosts:SOURCES (a refused spec or another database's: ignored)
        hosts_line = spec.split(":")[-1].strip("'")
    order = [w for w in hosts_line.split() if not w.startswith("[")]

    def reached(source: str) -> bool:
        # first on the line: every lookup reaches it; after files: only what files did not find
        if source not in order:
            return False
        before = order[:order.index(source)]
        if "files" not in before or b"rc=2" in real[1] or b"rc=0" not in real[1]:
            return True
        # `getent hosts` asks for IPv6 first: a name files knows only as IPv4 went on to the
        # next sources in that first pass (a booted machine's DNS may have an AAAA record)
        addrs = [ln.split()[0] for ln in real[1].splitlines() if ln and not ln.startswith(b"rc=")]
        return " hosts " in f" {cmd} " and any(b":" not in a for a in addrs)
    if "only DNS could answer" in reason or "reverse lookup only DNS" in reason:
        return reached("dns")
    if "myhostname source" in reason:  # also a name files writes otherwise ("LocalHost.")
        return reached("myhostname") or ("myhostname" in order and (b"localhost" in real[1].lower()
                                                                     or b"127.0.0.2" in real[1]))
    if "AI_ADDRCONFIG" in reason:
        return "ahosts" in cmd and "-A" not in cmd
    if "RFC 3484" in reason:
        return len({ln.split()[0] for ln in real[1].splitlines() if ln and not ln.startswith(b"rc=")}) > 1
    return False


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot and unshare need root")
    if subprocess.run(["unshare", "-n", "-u", "true"], capture_output=True).returncode != 0:
        pytest.skip("no network or UTS namespaces here")
    return HostsPair(str(tmp_path_factory.mktemp("getent-hosts")))


HOSTS = (b"127.0.0.1\tlocalhost\n"
         b"127.0.1.1\tvm.example.org vm\n"
         b"\n# the following lines are desirable for IPv6 capable hosts\n"
         b"::1     localhost ip6-localhost ip6-loopback\n"
         b"ff02::1 ip6-allnodes\n"
         b"ff02::2 ip6-allrouters\n"
         b"10.0.0.5   ldap.example.org ldap  LDAP-Alias # a comment\n"
         b"10.0.0.6 dirhost\n"
         b"10.0.0.7 Mixed.Case.Host mixed\n"
         b"2001:db8::7 mixed six-only\n"
         b"::ffff:10.0.0.8 mapped\n"
         b"10.0.0.9 multi\n"
         b"10.0.0.10 multi other-name\n"
         b"10.0.0.11 second multi\n"
         b"fe80::1 link\n"
         b"169.254.1.1 link\n"
         b"192.0.2.1 link\n"
         b"not-an-address badline\n"
         b"300.1.1.1 badline\n"
         b"  \t 10.0.0.12   indented\n"
         b"10.0.0.13\n"
         b"#10.0.0.14 commented\n"
         b"10.0.0.15 x\0nul\n"
         b"  10.0.0.16 lastline")


def setup_with(hosts: bytes | None = HOSTS, line: str | None = "files dns", host_conf: bytes | None = b"multi on\n",
               hostname: bytes | None = b"vm\n", gai: bytes | None = None):
    """A setup writing the same files on both copies (None removes the file)."""
    def setup(root):
        for rel, data in (("etc/hosts", hosts), ("etc/host.conf", host_conf), ("etc/hostname", hostname),
                          ("etc/gai.conf", gai)):
            p = os.path.join(root, rel)
            if data is None:
                if os.path.lexists(p):
                    os.unlink(p)
            else:
                with open(p, "wb") as f:
                    f.write(data)
        if line is not None:
            p = os.path.join(root, "etc/nsswitch.conf")
            text = open(p).read().splitlines()
            text = [f"hosts:          {line}" if t.startswith("hosts:") else t for t in text]
            with open(p, "w") as f:
                f.write("\n".join(text) + "\n")
    return setup


def lines(*cmds: str) -> list[str]:
    return [f"{c}; echo rc=$?" for c in cmds]


KEYS = ["localhost", "LOCALHOST", "vm", "vm.example.org", "ldap", "LDAP", "ldap-alias", "ldap.example.org",
        "dirhost", "mixed", "MIXED.case.host", "six-only", "mapped", "multi", "other-name", "second", "link",
        "ip6-localhost", "ip6-allnodes", "badline", "indented", "nul", "x", "lastline", "nosuch", "nosuch.example.org",
        "127.0.0.1", "127.0.1.1", "::1", "10.0.0.5", "::ffff:10.0.0.8", "10.0.0.8", "2001:db8::7", "ff02::1",
        "192.0.2.99", "::", "0.0.0.0", "127.1", "0x7f.1", "10.0.0", "1.2.3.4.", "fe80::1", "1.2.3.400", "::g",
        "a:b", "*", "localhost.", "foo.localhost", "ldap."]


def cmds(db: str, keys=KEYS) -> list[str]:
    return lines(*[f"getent {db} '{k}'" for k in keys], f"getent {db}", f"getent {db} ldap nosuch dirhost",
                 f"getent {db} nosuch 10.0.0.5 192.0.2.99 ldap ::1 127.0.0.1")


@pytest.mark.parametrize("db", ["hosts", "ahosts", "ahostsv4", "ahostsv6", "-A ahostsv4", "ahostsv6 -A"])
def test_files_dns(pair, db):
    pair.check(cmds(db), setup=setup_with())


@pytest.mark.parametrize("line", ["files", "dns files", "dns [NOTFOUND=return] files", "dns [UNAVAIL=return] files",
                                  "dns [!UNAVAIL=return] files", "files [NOTFOUND=return] dns",
                                  "files [SUCCESS=continue] dns", "mdns4_minimal [NOTFOUND=return] files",
                                  "mdns4_minimal [UNAVAIL=return] files", "dns [ !success = Return ] files",
                                  "", "dns # a comment", "files # trailing comment"])
def test_actions(pair, line):
    keys = ["localhost", "ldap", "nosuch", "10.0.0.5", "192.0.2.99", "::1", "mixed", "127.1"]
    steps = cmds("hosts", keys) + cmds("ahosts", keys) + cmds("-A ahostsv6", keys[:3])
    if "SUCCESS=continue" in line:  # enumeration is deferred there (see test_deferred)
        steps = [s for s in steps if not s.startswith(("getent hosts;", "getent ahosts;", "getent -A ahostsv6;"))]
    pair.check(steps, setup=setup_with(line=line))


@pytest.mark.parametrize("line", ["files myhostname", "myhostname files", "files myhostname dns",
                                  "myhostname [NOTFOUND=return] dns", "files [NOTFOUND=return] myhostname"])
def test_myhostname(pair, line):
    keys = ["localhost", "LocalHost.", "a.b.localhost", "x.localhost.localdomain", "vm", "vm.", "VM", "vm.example.org",
            "ldap", "nosuch", "127.0.0.1", "127.0.0.2", "::1", "10.0.0.5", "192.0.2.99"]
    pair.check(cmds("hosts", keys) + cmds("ahosts", keys) + cmds("-A ahostsv4", keys) + cmds("-A ahostsv6", keys),
               setup=setup_with(line=line))


def test_without_hosts_file(pair):
    # minbase has no /etc/hosts: files is UNAVAIL, so dns [UNAVAIL=return] stops there
    for line in ("files dns", "files [UNAVAIL=return] myhostname", "files myhostname"):
        pair.check(cmds("hosts", ["localhost", "vm", "ldap", "127.0.0.1"]) + cmds("ahosts", ["localhost", "ldap"]),
                   setup=setup_with(hosts=None, line=line))


def test_no_nsswitch_conf(pair):
    # glibc's default for hosts is "files dns"
    def setup(root):
        setup_with()(root)
        os.unlink(os.path.join(root, "etc/nsswitch.conf"))
    pair.check(cmds("hosts", ["localhost", "ldap", "nosuch", "10.0.0.5"]) + cmds("ahosts", ["ldap", "nosuch"]),
               setup=setup)


@pytest.mark.parametrize("conf", [None, b"", b"nameserver 127.0.0.1\n", b"options ndots:0 use-vc\n"])
def test_dns_defers_whatever_resolv_conf_says(pair, conf):
    """A lookup that reaches dns is the network's to answer: deferred, resolv.conf or not."""
    def setup(root):
        setup_with(line="dns [NOTFOUND=return] files")(root)
        p = os.path.join(root, "etc/resolv.conf")
        if os.path.lexists(p):
            os.unlink(p)
        if conf is not None:
            with open(p, "wb") as f:
                f.write(conf)
    pair.reset(setup)
    for cmd in ("getent hosts ldap", "getent hosts 10.0.0.5", "getent -A ahostsv4 ldap"):
        pair.run_model(cmd)
        assert pair.last.deferred_commands, cmd
        assert "DNS" in pair.last.deferred_commands[0].reason


@pytest.mark.parametrize("line", ["files [NOTFOUND=return] dns", "files [NOTFOUND=return] myhostname",
                                  "files [UNAVAIL=return] dns"])
def test_sources_after_return_are_not_reached(pair, line):
    """A name ``files`` decides never reaches dns or myhostname: answered, not deferred."""
    hosts = None if "UNAVAIL" in line else HOSTS
    before = pair.judged_steps
    pair.check(lines("getent hosts nosuch", "getent hosts ldap", "getent -A ahostsv4 nosuch", "getent hosts 192.0.2.99"),
               setup=setup_with(hosts=hosts, line=line))
    assert pair.judged_steps - before == 4


def test_files_hits_are_judged(pair):
    """Across the module, most command lines are answered and judged, not deferred (the keys
    /etc/hosts has, with files first)."""
    judged, deferred = pair.judged_steps, pair.deferred_steps
    pair.check(cmds("hosts", KEYS[:26]) + cmds("-A ahostsv4", ["localhost", "ldap", "dirhost", "10.0.0.5"]),
               setup=setup_with(line="files"))
    assert pair.judged_steps - judged > 25 and pair.deferred_steps - deferred < 5


def test_multi_off_and_host_conf(pair):
    keys = ["multi", "other-name", "second", "link", "localhost", "mixed"]
    for conf in (None, b"", b"multi off\n", b"order hosts,bind\nmulti on\n", b"MULTI On # yes\n"):
        pair.check(cmds("hosts", keys) + cmds("ahosts", keys) + cmds("-A ahostsv4", keys),
                   setup=setup_with(host_conf=conf))


def test_malformed_lines(pair):
    hosts = (b"10.1.1.1\n"  # an address alone: an entry with an empty name
             b"10.1.1.2 \n"
             b"10.1.1.3\tname\textra\t\n"
             b"1.2.3 short\n"
             b"010.1.1.4 octal\n"
             b"::ffff:1.2.3.4/8 slash\n"
             b"10.1.1.5#glued comment\n"
             b"\x01\x02 garbage\n"
             b"10.1.1.6 caf\xc3\xa9\n"
             b"   # indented comment\n"
             b"10.1.1.7 noeol-after-indent")
    keys = ["name", "extra", "short", "octal", "slash", "glued", "garbage", "caf\xe9", "noeol-after-indent",
            "10.1.1.1", "10.1.1.2", "10.1.1.3", "10.1.1.5"]
    pair.check(cmds("hosts", keys) + cmds("ahosts", keys[:5]), setup=setup_with(hosts=hosts))
    pair.check(cmds("hosts", ["x", "10.2.2.2"]), setup=setup_with(hosts=b"   10.2.2.2 x"))


def test_ahosts_order(pair):
    hosts = (b"192.0.2.1 many\n2001:db8::1 many\n127.0.0.1 many\n::1 many\nfe80::2 many\n169.254.3.3 many\n"
             b"2002::1 many\n::ffff:192.0.2.9 many\nfec0::1 many\nfc00::1 many\n10.9.9.9 many\n")
    pair.check(lines("getent ahosts many", "getent hosts many", "getent -A ahostsv6 many", "getent -A ahostsv4 many"),
               setup=setup_with(hosts=hosts))


def test_usage(pair):
    pair.check(lines("getent", "getent hosts", "getent nosuchdb", "getent -A hosts localhost",
                     "getent -i ahosts localhost", "getent -s files hosts localhost", "getent -s dns hosts localhost",
                     "getent --service=files ahosts ldap", "getent -s 'bad [x=y]' hosts ldap",
                     "getent -s passwd:files hosts ldap"), setup=setup_with(line="dns"))


def test_nslcd_config(pair):
    # nslcd's debconf config: the names it tries, with and without /etc/hosts entries for them
    script = ('domain=example.org; server=`getent hosts ldap` || true; [ -z "$server" ] && server=`getent hosts '
              'dirhost` || true; if [ -n "$domain" ] && [ -z "$server" ]; then server=`getent hosts ldap."$domain"` '
              '|| true; [ -z "$server" ] && server=`getent hosts dirhost."$domain"` || true; fi; '
              'echo "[$server]"; echo $server | awk \'{print $2}\'')
    pair.check([script], setup=setup_with())
    pair.check([script], setup=setup_with(hosts=b"127.0.0.1 localhost\n10.3.3.3 dirhost.example.org\n"))
    pair.check([script], setup=setup_with(hosts=None))


@pytest.mark.parametrize("cmd,line", [
    ("getent hosts _gateway", "files myhostname"), ("getent ahosts _outbound", "myhostname"),
    ("getent hosts nosuch", "files resolve [!UNAVAIL=return] dns"), ("getent hosts", "files sss"),
    ("getent hosts ldap", "files [NOTFOUND=merge] dns"), ("getent ahosts caf\xe9", "files dns"),
    ("getent ahosts fe80::1%eth0", "files"), ("getent hosts a..b", "dns"),
    ("getent hosts", "files [SUCCESS=continue] dns"),
    ("getent ahosts multi", "files gai.conf"), ("getent hosts x", "files host.conf")])
def test_deferred(pair, cmd, line):
    """What needs a running service or network is deferred, with the reason; so are a gai.conf
    table and host.conf lines other than multi/order."""
    extra = {"gai.conf": {"gai": b"precedence ::ffff:0:0/96 100\n"}, "host.conf": {"host_conf": b"reorder on\n"}}
    words = line.split()
    if words[-1] in extra:
        pair.reset(setup_with(line=" ".join(words[:-1]), **extra[words[-1]]))
    else:
        pair.reset(setup_with(line=line))
    fake = None
    if "resolve" in line or "sss" in line:  # the module is installed (on the model's copy): it answers at boot
        name = "resolve" if "resolve" in line else "sss"
        fake = os.path.join(pair.model, f"usr/lib/x86_64-linux-gnu/libnss_{name}.so.2")
        open(fake, "wb").close()
    try:
        pair.run_model(cmd)
    finally:
        if fake:
            os.unlink(fake)
    assert pair.last.deferred_commands, cmd


ADDRS = ["10.0.0.1", "10.0.0.2", "::1", "::ffff:10.0.0.3", "2001:db8::1", "fe80::1", "127.0.0.1", "1.2.3", "0x7f.0.0.1",
         "::", "0.0.0.0", "bogus", "10.0.0.1.", "::ffff:1.2.3.4"]
NAMES = ["a", "A", "b", "a.b", "c", "localhost", "vm", "x-y", "a.", "B.a"]


@pytest.mark.parametrize("seed", range(8))
def test_random_hosts_files(pair, seed):
    """Seeded random /etc/hosts files (spacing, comments, indented and unterminated lines, CRLF,
    invalid addresses), sources and host.conf; every database, several keys, enumeration."""
    r = random.Random(seed)
    rows = []
    for _ in range(r.randint(1, 8)):
        parts = [r.choice(ADDRS)] + [r.choice(NAMES) for _ in range(r.randint(0, 3))]
        row = "".join(x + r.choice([" ", "\t", "  ", " \t "]) for x in parts).rstrip()
        if r.random() < 0.2:
            row = r.choice([" ", "\t"]) + row
        if r.random() < 0.2:
            row += " #" + r.choice(NAMES)
        if r.random() < 0.1:
            row = "#" + row
        rows.append(row)
    eol = "\r\n" if r.random() < 0.15 else "\n"
    text = eol.join(rows) + (eol if r.random() < 0.8 else "")
    line = r.choice(["files", "files dns", "files myhostname", "dns [NOTFOUND=return] files", "myhostname files"])
    keys = r.sample(NAMES + ["10.0.0.1", "127.0.0.1", "::1", "2001:db8::1", "10.0.0.3", "::ffff:10.0.0.3"], 5)
    steps = []
    for db in ("hosts", "ahosts", "-A ahostsv4", "-A ahostsv6"):
        steps += cmds(db, keys)
    pair.check(steps, setup=setup_with(hosts=text.encode(), line=line,
                                       host_conf=r.choice([b"multi on\n", b"", None])))
