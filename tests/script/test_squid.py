"""``squid -k parse`` (squid 5.7) against the real program in a chroot of a bookworm tree.

A minbase tree with squid is copied twice; each case restores squid's configuration and the
files ``configDoConfigure`` looks at, changes both copies alike, runs the same command lines
with real ``sh`` in a chroot of one (no squid is running there) and with Nuwa's interpreter on
the other, and compares status, stdout and stderr. squid stamps each line with the time and,
when it dies, prints its own CPU time, memory and page faults: those figures are masked on
both sides (the model prints zeros, see nuwa/script/commands/server/squid.py).

The host name squid checks is the running kernel's in the chroot and the image's
``/etc/hostname`` in the model; every case names the kernel's in both trees' ``/etc/hostname``
and ``/etc/hosts`` (as a Debian installation does) unless it tests the other cases.
"""

from __future__ import annotations

import os
import re
import socket

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS, ShellPair

CONF = "etc/squid/squid.conf"
_STAMP = re.compile(rb"(?m)^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\| ")
_RUSAGE = re.compile(rb"(?m)^(CPU Usage: |Maximum Resident Size: |Page faults with physical i/o: |.*  Took ).*$")
#: the postinst's grepconf and grepconf2, verbatim (/var/tmp/nuwa-corpus/control/squid/postinst)
GREPCONF = r"""
grepconf () {
	w=" 	" # space tab
	res=`squid -k parse 2>&1 |
		grep "Processing:" |
		sed s/.*Processing:\ // |
		sed -ne '
			s/^'$1'['"$w"']\+\([^'"$w"']\+\).*$/\1/p;
			t end;
			d;
			:end q'`
	[ -n "$res" ] || res=$2
	echo "$res"
}
grepconf2 () {
	w=" 	" # space tab
	res=`squid -k parse 2>&1 |
		grep "Processing:" |
		sed s/.*Processing:\ // |
		sed -ne '
			s/^'$1'['"$w"']\+[^'"$w"']\+['"$w"']\+\([^'"$w"']\+\).*$/\1/p;
			t end;
			d;
			:end q'`
	[ -n "$res" ] || res=$2
	echo "$res"
}
"""
POSTINST = GREPCONF + ("echo $(grepconf2 cache_dir /var/spool/squid) $(grepconf cache_effective_user proxy) "
                       "$(grepconf cache_effective_group proxy)")


def mask(stream: bytes) -> bytes:
    """Time stamps and the dying process's resource figures out."""
    return _RUSAGE.sub(lambda m: m.group(1) + b"N", _STAMP.sub(b"STAMP| ", stream))


class SquidPair(ShellPair):
    PACKAGES = ("squid",)
    DIRS = ["etc/squid", "usr/share/squid/icons", "srv"]
    FILES = ["etc/hosts", "etc/hostname", "etc/passwd", "etc/group", "usr/share/squid/mime.conf",
             "usr/lib/squid/unlinkd", "usr/lib/squid/log_file_daemon"]

    def check(self, steps, setup=None, normalize=None, env=None, named=True):
        """Each command line on both sides, stderr and stdout masked (no deferral allowed)."""
        def both(root):
            if named:
                name = socket.gethostname()
                with open(os.path.join(root, "etc/hostname"), "w") as f:
                    f.write(name + "\n")
                with open(os.path.join(root, "etc/hosts"), "a") as f:
                    f.write(f"127.0.1.1\t{name}\n")
            if setup:
                setup(root)
        self.reset(both)
        for cmd in steps:
            real = self.run_real(cmd)
            model = self.run_model(cmd)
            assert not self.last.deferred_commands, self.last.deferred_commands
            real, model = [(s, mask(o), mask(e)) for s, o, e in (real, model)]
            assert model == real, f"{cmd}:\nmodel {model}\nreal  {real}"
            assert real[2] or real[1]  # something was compared


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return SquidPair(str(tmp_path_factory.mktemp("squid")))


def files(**texts: bytes):
    """A setup writing ``etc/squid``-relative files (``__`` in a keyword is ``/``)."""
    def setup(root):
        for rel, data in texts.items():
            p = os.path.join(root, "etc/squid", rel.replace("__", "/"))
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "wb") as f:
                f.write(data)
    return setup


def setups(*steps):
    """Several setups in order."""
    def setup(root):
        for step in steps:
            step(root)
    return setup


def conf(*lines: str, **more: bytes):
    """squid.conf made of ``lines`` (and other files as :func:`files`)."""
    return files(**{"squid.conf": "".join(ln + "\n" for ln in lines).encode()}, **more)


def appended(text: bytes):
    """The default squid.conf with ``text`` appended."""
    def setup(root):
        with open(os.path.join(root, CONF), "ab") as f:
            f.write(text)
    return setup


def test_default_configuration(pair):
    pair.check(["squid -k parse; echo $?", "squid -k parse 2>&1 | grep -c Processing:", POSTINST,
                "squid -k p -f /etc/squid/squid.conf; echo $?", "cd /etc && squid -k parse -f squid/squid.conf; echo $?"])


def test_postinst_values_from_an_edited_configuration(pair):
    pair.check([POSTINST, "squid -k parse; echo $?"], setup=appended(
        b"cache_dir ufs /srv/cache 500 16 256\n  cache_effective_user   nobody # who\n"
        b"cache_effective_group\tnogroup\ncache_dir aufs /srv/other 100 16 256\n"))


def test_includes(pair):
    pair.check(["squid -k parse; echo $?", POSTINST], setup=conf(
        "include /etc/squid/conf.d/*.conf /etc/squid/one.conf",
        "acl mine src 10.1.0.0/16",
        "http_access allow mine",
        "include /etc/squid/nested/?.conf",
        **{"one.conf": b"http_port 8080\n", "conf.d__b.conf": b"coredump_dir /srv\n",
           "conf.d__a.conf": b"cache_dir ufs /srv/a 10 1 1\n", "conf.d__.hidden.conf": b"bad one\n",
           "nested__x.conf": b"include /etc/squid/nested/deeper/*\n",
           "nested__deeper__z": b"visible_hostname example\n", "nested__xy.conf": b"not read\n"}))


def test_relative_include_and_missing_ones(pair):
    pair.check(["cd /etc/squid && squid -k parse; echo $?", "squid -k parse; echo $?"],
               setup=conf("include conf.d/*.conf", "http_port 3128"))
    for missing in ("include /etc/squid/none.conf", "include /etc/squid/conf.d/*.nothing",
                    "include /etc/squid/nodir/*.conf", "include /etc/squid/conf.d/debian.conf /nope"):
        pair.check(["squid -k parse; echo $?"], setup=conf("http_port 3128", missing))
    pair.check(["squid -k parse -f /etc/squid/absent.conf; echo $?", "squid -k parse -f /etc/squid; echo $?"])
    # a file that includes itself: 17 levels, then squid gives up
    pair.check(["squid -k parse; echo $?"], setup=conf("http_port 3128", "include /etc/squid/squid.conf"))


def test_included_directories_and_links(pair):
    def tree(root):
        d = os.path.join(root, "etc/squid/conf.d")
        os.makedirs(os.path.join(d, "sub"))
        os.symlink("debian.conf", os.path.join(d, "linked.conf"))
        os.symlink("/etc/squid/conf.d", os.path.join(root, "etc/squid/via"))
    pair.check(["squid -k parse; echo $?", "squid -k parse -f /etc/squid/conf.d/sub; echo $?"],
               setup=setups(tree, conf("include /etc/squid/conf.d/*", "include /etc/squid/via/*.conf")))

    def dangling(root):
        os.symlink("nowhere.conf", os.path.join(root, "etc/squid/conf.d/gone.conf"))
    for line in ("include /etc/squid/conf.d/*.conf", "include /etc/squid/conf.d/gone.conf"):
        pair.check(["squid -k parse; echo $?"], setup=setups(dangling, conf("http_port 3128", line)))


def test_continuations_comments_macros_and_conditions(pair):
    pair.check(["squid -k parse; echo $?", POSTINST], setup=conf(
        "acl ports port 80 \\", "# a comment inside", "", "    443 \\", "\t  8080", "http_access deny !ports",
        "if ${process_number} = 0", "  visible_hostname ${service_name}-${process_name}", "else",
        "  visible_hostname other", "  include /nonexistent.conf", "endif",
        "if false", "if true", "cache_dir ufs /srv/no 1 1 1", "endif", "endif",
        "cache_dir ufs /srv/cache 100 16 256   \r", "#line is a comment", "\f\vcoredump_dir /srv\v",
        "include\t/etc/squid/conf.d/debian.conf\v/etc/squid/conf.d/*", "trailing \\"))


@pytest.mark.parametrize("bad", [
    "if 1 = x", "if x = 1", "if maybe", "endif", "else", "if true", "if 0x10 = 16\nlogfile_rotate y\nendif", "if 010 = 8\nlogfile_rotate z\nendif"])
def test_bad_conditions(pair, bad):
    pair.check(["squid -k parse; echo $?"], setup=conf("http_port 3128", *bad.split("\n")))


def test_bytes_pass_through(pair):
    # UTF-8 and Latin-1 bytes in comments after values, in values and in an unknown name
    pair.check(["squid -k parse; echo $?"], setup=appended(
        "coredump_dir /srv/caf\u00e9 # caf\u00e9\nvisible_hostname h\u00f4te\n".encode()
        + b"http_port 3128 # \xe9t\xe9\n\xe9\xe9 x\n"))


def test_unrecognized_directives_are_counted(pair):
    pair.check(["squid -k parse; echo $?", POSTINST], setup=conf(
        "foo bar", "http_port 3128", "Cache_dir ufs /srv 1 1 1", "include /etc/squid/x.conf",
        **{"x.conf": b"\n\nnosuch\n"}))


@pytest.mark.parametrize("bad", [
    "logfile_rotate x", "logfile_rotate", "acl p port 70-", "acl p port 5-3", "acl p port abc",
    "acl p port 80 \\\n  y", "http_access allow nosuch", "http_access deny !ghost localnet", "visible_hostname",
    "cache_effective_user", "acl ok port 1\nhttp_access allow ok\ncoredump_dir", "cache_dir ufs /srv/c 0 16 256",
    "cache_dir ufs /srv/c 10 0 256", "cache_dir aufs /srv/c 10 16 0", "cache_dir ufs /srv/c 10 16",
    "cache_dir ufs /srv/c", "cache_dir ufs /srv/c x 1 1", "cache_dir ufs /srv/c 1 1 y"])
def test_bad_values(pair, bad):
    pair.check(["squid -k parse; echo $?", POSTINST], setup=appended(bad.encode() + b"\n"))


def test_acls(pair):
    pair.check(["squid -k parse; echo $?"], setup=appended(
        b"acl m method FOO BAR GET\nacl l src 1.2.3.4-1.2.3.4 1.2.3.5-1.2.3.9 2001:db8::/32 2001:db9::1\n"
        b"acl l src 10.0.0.0/8\nacl p port 1 2-3 65535 0\nacl p port 4\n"
        b"http_access allow !m l p\nhttp_access deny !all\nhttp_access allow to_localhost\n"))


def test_refresh_patterns_regcomp_accepts(pair):
    pair.check(["squid -k parse; echo $?"], setup=appended(
        b"refresh_pattern () 1 1% 1\nrefresh_pattern -i a| 0 0% 0\n"
        b"refresh_pattern a) 0 0% 0\nrefresh_pattern []a] 0 0% 0\nrefresh_pattern [[:alpha:]]\\.deb$ 0 0% 0\n"
        b"refresh_pattern \\w+ 0 0% 0\nrefresh_pattern ^http://x/(a|b)?c*$ 0 100% 525600\n"))


def test_accounts_and_required_paths(pair):
    pair.check(["squid -k parse; echo $?"], setup=appended(b"cache_effective_user nosuchuser\n"))
    pair.check(["squid -k parse; echo $?"], setup=appended(b"cache_effective_group nosuchgroup\n"))

    def damage(root):
        os.unlink(os.path.join(root, "usr/share/squid/mime.conf"))
        os.unlink(os.path.join(root, "usr/lib/squid/unlinkd"))
        with open(os.path.join(root, "etc/passwd")) as f:
            kept = [ln for ln in f if not ln.startswith("proxy:")]
        with open(os.path.join(root, "etc/passwd"), "w") as f:
            f.writelines(kept)
    pair.check(["squid -k parse; echo $?"], setup=damage)
    pair.check(["squid -k parse; echo $?"], setup=lambda root: os.rename(
        os.path.join(root, "usr/share/squid/icons"), os.path.join(root, "srv/icons")))


def test_visible_hostname_needs_no_lookup(pair):
    # the host name is nowhere in /etc/hosts: only visible_hostname keeps squid from asking DNS
    pair.check(["squid -k parse; echo $?"], setup=appended(b"visible_hostname proxy.example\n"), named=False)


def model(pair, cmd, setup=None):
    pair.reset(setup)
    fs = Overlay(HostDirFS(pair.model, writable=False))
    return run_script(fs, cmd, env=dict(ENV), models=MODELS, is_path=False)


@pytest.mark.parametrize("cmd, setup, reason", [
    ("squid -k reconfigure", None, "only -k parse"),
    ("squid -k check", None, "only -k parse"),
    ("squid -v", None, ""),
    ("squid -k parse", appended(b"http_port 3128 intercept\n"), "http_port"),
    ("squid -k parse", appended(b"acl d dstdomain .example.com\n"), "acl type dstdomain"),
    ("squid -k parse", appended(b"acl l src 10.1.0.0/16 10.1.2.0/24\n"), "overlapping"),
    ("squid -k parse", appended(b"acl l src 10.0.0.1\nacl l src 10.0.0.1\n"), "overlapping"),
    ("squid -k parse", appended(b"acl l src ::ffff:1.2.3.4 1.2.3.4\n"), "'::ffff:1.2.3.4'"),
    ("squid -k parse", appended(b"acl l src fe80::1%eth0\n"), "fe80"),
    ("squid -k parse", appended(b"acl l src localhost\n"), "'localhost'"),
    ("squid -k parse", appended(b"acl l src 10.0.0.1/8\n"), "10.0.0.1/8"),
    ("squid -k parse", appended(b"acl localnet port 80\n"), "another type"),
    ("squid -k parse", appended(b"refresh_pattern . 0 20% 4320 override-expire\n"), "refresh_pattern"),
    ("squid -k parse", appended(b"refresh_pattern *a 0 0% 0\n"), "regcomp"),
    ("squid -k parse", appended(b"refresh_pattern . 525601 0% 0\n"), "refresh_pattern"),
    ("squid -k parse", appended(b"cache_dir ufs /srv/a 1 1 1\ncache_dir ufs /srv/A 2 2 2\n"), "new ufs"),
    ("squid -k parse", appended(b"cache_dir rock /srv/a 1\n"), "cache_dir rock"),
    ("squid -k parse", appended(b"refresh_pattern (+a) 0 0% 0\n"), "regcomp"),
    ("squid -k parse", appended(b"refresh_pattern a{2} 0 0% 0\n"), "regcomp"),
    ("squid -k parse", appended(b"refresh_pattern [ 0 0% 0\n"), "regcomp"),
    ("squid -k parse", appended(b"refresh_pattern x\\ 0 0% 0\n"), "regcomp"),
    ("squid -k parse -f '!cat /etc/squid/squid.conf'", None, "command"),
    ("squid -k parse", appended(b"cache_mem 100 MB\n"), "cache_mem is not modelled"),
    ("squid -k parse", None, "not in /etc/hosts"),
    ("squid -k parse", appended(b"#line 7 \"other.conf\"\n"), "#line"),
    ("squid -k parse", appended(b"http_access allow ! all\n"), "lone"),
])
def test_deferred(pair, cmd, setup, reason):
    def unnamed(root):
        with open(os.path.join(root, "etc/hostname"), "w") as f:
            f.write("unknown-host\n")
        if setup:
            setup(root)
    res = model(pair, cmd, unnamed)
    assert res.deferred_commands, res
    assert reason in str(res.deferred_commands)
