"""update-alternatives against the real program of dpkg 1.21.22, run in a chroot of the same tree.

The oracle is the host's ``/usr/bin/update-alternatives`` (dpkg 1.21.22, the version of
Debian 12), copied with its C library into a small merged-/usr scratch root and run there
with ``chroot``: absolute symlinks (``/usr/bin/editor -> /etc/alternatives/editor``) then
resolve inside the tree exactly as in the image, which ``--root`` would not give. The scratch
root holds the link groups of a real bookworm minbase tree (awk, pager, rmt, which,
builtins.7.gz: admin files, ``/etc/alternatives`` links and the links into ``/usr``) and
small files for the choices of the cases; every file and link has a fixed modification time.

Each case runs on two copies of it: the real program in copy A, the model on copy B as the
image root. Compared: stdout, stderr, the exit status, the whole tree (admin files byte for
byte, link targets, modes), the modification time of every symlink the run did not create
"now" (update-alternatives copies a target's time onto a new link), and
``/var/log/alternatives.log`` line by line with the two timestamps at most 2 s apart.
"""

from __future__ import annotations

import calendar
import os
import re
import shlex
import shutil
import stat
import subprocess
import time

import pytest

from cmdharness import snapshot
from debian_tree import bookworm_tree, copy_tree
from dpkghelpers import ENV, require_dpkg
from helpers import runs
from judges import tool
from nuwa.deb.alternatives import parse_admin
from nuwa.script.commands import default_models
from nuwa.script.context import Defer

MODELS = default_models()

T0 = 1_600_000_000
STAMP = re.compile(rb"^update-alternatives (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d): ", re.M)

# files the cases choose between (merged /usr: /bin/nano is /usr/bin/nano)
FILES = [
    "usr/bin/nano", "usr/bin/vim.basic", "usr/bin/vim.tiny", "usr/bin/gawk", "usr/bin/less", "usr/bin/emacs-nox",
    "usr/bin/nc.openbsd", "usr/bin/nc.traditional", "usr/bin/w.procps", "usr/bin/firefox-esr", "usr/bin/chromium",
    "usr/bin/fakeroot-sysv", "usr/bin/fakeroot-tcp", "usr/bin/python3-jsonschema",
    "usr/share/man/man1/nano.1.gz", "usr/share/man/man1/vim.1.gz", "usr/share/man/da/man1/vim.1.gz",
    "usr/share/man/de/man1/vim.1.gz", "usr/share/man/man1/gawk.1.gz", "usr/share/man/man1/less.1.gz",
    "usr/share/man/man1/nc_openbsd.1.gz", "usr/share/man/man1/nc_traditional.1.gz",
    "usr/share/man/man1/w.procps.1.gz", "usr/share/man/man1/firefox-esr.1.gz", "usr/share/man/man1/fakeroot-sysv.1.gz",
    "usr/share/man/man1/fakeroot-tcp.1.gz", "usr/lib/firmware/regulatory.db-debian",
    "usr/lib/firmware/regulatory.db.p7s-debian", "usr/lib/firmware/regulatory.db-upstream",
    "usr/lib/firmware/regulatory.db.p7s-upstream", "etc/mysql/mariadb.cnf", "etc/mysql/my.cnf.fallback",
]
TREE_GROUPS = ("awk", "builtins.7.gz", "pager", "rmt", "which")
ZONES = ("Europe/Paris", "Asia/Tokyo")


def _merged(rel: str) -> str:
    for d in ("bin", "sbin", "lib"):
        if rel.startswith(d + "/"):
            return "usr/" + rel
    return rel


def _chroot_support(root: str) -> None:
    """The real program and what it loads, at their merged-/usr places."""
    binary = tool("update-alternatives")
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = re.findall(r"(/\S+) \(0x", out)
    for src in [binary] + libs:
        dst = os.path.join(root, _merged(src.lstrip("/")))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(src), dst)


def _touch(root: str, rel: str, mtime: int, data: bytes | None = None) -> None:
    p = os.path.join(root, _merged(rel))
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data if data is not None else rel.encode() + b"\n")
    os.utime(p, (mtime, mtime))


def build_base(root: str) -> None:
    """The scratch root (see the module docstring)."""
    for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/alternatives", "var/lib/dpkg/alternatives", "var/log"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for d in ("bin", "sbin", "lib", "lib64"):
        os.symlink("usr/" + d, os.path.join(root, d))
    _chroot_support(root)
    for i, rel in enumerate(FILES):
        _touch(root, rel, T0 + 1000 * i)
    tree = bookworm_tree()
    for n in TREE_GROUPS:
        src = os.path.join(tree, "var/lib/dpkg/alternatives", n)
        shutil.copy2(src, os.path.join(root, "var/lib/dpkg/alternatives", n))
        alt = parse_admin(n, open(src, "rb").read(), src)
        links = [(n, alt.link)] + list(alt.slaves)
        for lname, link in links:
            for rel in (f"etc/alternatives/{lname}", link.lstrip("/")):
                p = os.path.join(tree, rel)
                if os.path.islink(p):
                    q = os.path.join(root, _merged(rel))
                    os.makedirs(os.path.dirname(q), exist_ok=True)
                    os.symlink(os.readlink(p), q)
                    m = os.lstat(p).st_mtime_ns
                    os.utime(q, ns=(m, m), follow_symlinks=False)
        for ch in alt.choices:
            for rel in [ch.path] + list(ch.slaves.values()):
                p = os.path.join(tree, rel.lstrip("/"))
                _touch(root, rel.lstrip("/"), int(os.stat(p).st_mtime) if os.path.exists(p) else T0 - 5)
    shutil.copy2(os.path.join(tree, "etc/alternatives/README"), os.path.join(root, "etc/alternatives/README"))
    for zone in ZONES:  # the time zones of the log cases, from the host's tzdata (absent: those cases skip)
        src = os.path.join("/usr/share/zoneinfo", zone)
        if os.path.exists(src):
            os.makedirs(os.path.join(root, "usr/share/zoneinfo", os.path.dirname(zone)), exist_ok=True)
            shutil.copyfile(src, os.path.join(root, "usr/share/zoneinfo", zone))


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    require_dpkg()
    if os.geteuid() != 0:
        pytest.skip("the oracle runs update-alternatives in a chroot, which needs root")
    root = str(tmp_path_factory.mktemp("ua") / "base")
    build_base(root)
    return root


@pytest.fixture
def ab(base, tmp_path):
    a, b = str(tmp_path / "A"), str(tmp_path / "B")
    copy_tree(base, a)
    copy_tree(base, b)
    return a, b


# ---- running and comparing ------------------------------------------------------------------

def _env(env: dict | None) -> dict:
    """The harness environment with the case's changes (a None value unsets a variable)."""
    e = dict(ENV)
    e.update(env or {})
    return {k: v for k, v in e.items() if v is not None}


def run_real(root: str, argv: list[str], env: dict | None, stdin: bytes) -> tuple[int, bytes, bytes]:
    """The real program in a chroot of ``root``."""
    return runs.run_real(["/usr/bin/update-alternatives", *argv[1:]], chroot=root, env=_env(env), stdin=stdin)


def run_model(root: str, argv: list[str], env: dict | None, stdin: bytes = b"") -> tuple[int, bytes, bytes]:
    """The model on ``root`` seen as the image."""
    return runs.run_model(root, argv, env=_env(env), stdin=stdin, models=MODELS, name="update-alternatives")


def link_times(root: str) -> dict[str, int]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            p = os.path.join(dirpath, n)
            s = os.lstat(p)
            if stat.S_ISLNK(s.st_mode):
                out[os.path.relpath(p, root)] = s.st_mtime_ns
    return out


def _read(root: str, rel: str) -> bytes:
    try:
        with open(os.path.join(root, rel), "rb") as f:
            return f.read()
    except FileNotFoundError:
        return b""


def compare_logs(la: bytes, lb: bytes) -> None:
    """The same lines; each pair of timestamps at most 2 s apart (both are "now", in UTC)."""
    assert STAMP.sub(b"update-alternatives T: ", la) == STAMP.sub(b"update-alternatives T: ", lb)
    for sa, sb in zip(STAMP.findall(la), STAMP.findall(lb)):
        ta, tb = (calendar.timegm(time.strptime(s.decode(), "%Y-%m-%d %H:%M:%S")) for s in (sa, sb))
        assert abs(ta - tb) <= 2, (sa, sb)


def both(ab, cmd, env=None, stdin=b""):
    """One invocation on both copies; assert the same output, status, tree, link times and log."""
    a, b = ab
    argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
    start = time.time_ns() - 10**9
    want = run_real(a, argv, env, stdin)
    try:
        got = run_model(b, argv, env, stdin)
    except Defer as d:
        raise AssertionError(f"model deferred {argv}: {d.reason}") from None
    dec = (lambda r: (r[0], r[1].decode("utf-8", "replace"), r[2].decode("utf-8", "replace")))
    assert dec(got) == dec(want), argv
    sa, sb = snapshot(a), snapshot(b)
    logs = sorted(k for k in set(sa) | set(sb) if k.endswith(".log"))  # the default one, --log's, under a root
    for k in logs:
        assert (k in sa) == (k in sb), (argv, k)
        compare_logs(_read(a, k), _read(b, k))
        sa.pop(k, None)
        sb.pop(k, None)
    diff = {k: (sa.get(k), sb.get(k)) for k in set(sa) | set(sb) if sa.get(k) != sb.get(k)}
    assert not diff, (argv, diff)
    ta, tb = link_times(a), link_times(b)
    for k, t in ta.items():
        if t < start:  # a time copied from a file, or an untouched link
            assert tb[k] == t, (argv, k, t, tb[k])
        else:
            assert tb[k] >= start, (argv, k, "made now by the real program, not by the model")
    return want


def prep(ab, fn) -> None:
    """A change made the same way to both copies (a file removed, a link made by hand)."""
    for root in ab:
        fn(root)


def rm(rel):
    return lambda root: os.unlink(os.path.join(root, _merged(rel)))


def regular(rel, data=b"local file\n"):
    def f(root):
        p = os.path.join(root, _merged(rel))
        if os.path.lexists(p):
            os.unlink(p)
        _touch(root, rel, T0 - 100, data)
    return f


def symlink(rel, target):
    def f(root):
        p = os.path.join(root, _merged(rel))
        if os.path.lexists(p):
            os.unlink(p)
        os.symlink(target, p)
        os.utime(p, (T0 - 200, T0 - 200), follow_symlinks=False)
    return f


def write(rel, data):
    return lambda root: _touch(root, rel, T0 - 300, data)


# ---- the table ------------------------------------------------------------------------------

ED_NANO = ("update-alternatives --install /usr/bin/editor editor /bin/nano 40 "
           "--slave /usr/share/man/man1/editor.1.gz editor.1.gz /usr/share/man/man1/nano.1.gz")
ED_NANO_BARE = "update-alternatives --install /usr/bin/editor editor /bin/nano 40"
ED_VIM = ("update-alternatives --install /usr/bin/editor editor /usr/bin/vim.basic 30 "
          "--slave /usr/share/man/man1/editor.1.gz editor.1.gz /usr/share/man/man1/vim.1.gz "
          "--slave /usr/share/man/da/man1/editor.1.gz editor.da.1.gz /usr/share/man/da/man1/vim.1.gz "
          "--slave /usr/share/man/de/man1/editor.1.gz editor.de.1.gz /usr/share/man/de/man1/vim.1.gz")
ED_TINY = ("update-alternatives --install /usr/bin/editor editor /usr/bin/vim.tiny 15 "
           "--slave /usr/share/man/man1/editor.1.gz editor.1.gz /usr/share/man/man1/vim.1.gz "
           "--slave /usr/share/man/da/man1/editor.1.gz editor.da.1.gz /usr/share/man/da/man1/vim.1.gz "
           "--slave /usr/share/man/fr/man1/editor.1.gz editor.fr.1.gz /usr/share/man/fr/man1/vim.1.gz")
ED_EMACS = "update-alternatives --install /usr/bin/editor editor /usr/bin/emacs-nox 50"
GAWK = ("update-alternatives --install /usr/bin/awk awk /usr/bin/gawk 10 "
        "--slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/gawk.1.gz "
        "--slave /usr/bin/nawk nawk /usr/bin/gawk "
        "--slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/gawk.1.gz")
MAWK = ("update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 "
        "--slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz "
        "--slave /usr/bin/nawk nawk /usr/bin/mawk "
        "--slave /usr/share/man/man1/nawk.1.gz nawk.1.gz /usr/share/man/man1/mawk.1.gz")
NC = ("update-alternatives --install /bin/nc nc /bin/nc.openbsd 50 --slave /bin/netcat netcat /bin/nc.openbsd "
      "--slave /usr/share/man/man1/nc.1.gz nc.1.gz /usr/share/man/man1/nc_openbsd.1.gz "
      "--slave /usr/share/man/man1/netcat.1.gz netcat.1.gz /usr/share/man/man1/nc_openbsd.1.gz")
REG_DEB = ("update-alternatives --install /lib/firmware/regulatory.db regulatory.db /lib/firmware/regulatory.db-debian 100 "
           "--slave /lib/firmware/regulatory.db.p7s regulatory.db.p7s /lib/firmware/regulatory.db.p7s-debian")
REG_UP = ("update-alternatives --install /lib/firmware/regulatory.db regulatory.db /lib/firmware/regulatory.db-upstream 50 "
          "--slave /lib/firmware/regulatory.db.p7s regulatory.db.p7s /lib/firmware/regulatory.db.p7s-upstream")
PKG_ENV = {"DPKG_ROOT": "", "DPKG_ADMINDIR": "/var/lib/dpkg", "DPKG_MAINTSCRIPT_PACKAGE": "nano",
           "DPKG_MAINTSCRIPT_NAME": "postinst"}

# (id, steps): a step is a command string, (command, env), (command, env, stdin) or a prep function
CASES = [
    # installs from Debian 12's maintainer scripts
    ("nano editor", [ED_NANO]),
    ("nano pico", ["update-alternatives --install /usr/bin/pico pico /bin/nano 10 "
                   "--slave /usr/share/man/man1/pico.1.gz pico.1.gz /usr/share/man/man1/nano.1.gz"]),
    ("nano in dpkg's environment", [(ED_NANO, PKG_ENV)]),
    ("gawk takes awk over mawk", [GAWK]),
    ("mawk reinstalled, nothing to do", [MAWK]),
    ("mawk reinstalled verbose", [MAWK.replace("--install", "--verbose --install")]),
    ("less pager quiet", ["update-alternatives --quiet --install /usr/bin/pager pager /usr/bin/less 77 "
                          "--slave /usr/share/man/man1/pager.1.gz pager.1.gz /usr/share/man/man1/less.1.gz"]),
    ("netcat through the /bin symlink", [NC]),
    ("regulatory.db two choices", [REG_DEB, REG_UP]),
    ("regulatory.db upstream first", [REG_UP, REG_DEB]),
    ("my.cnf query then install", ["update-alternatives --install /etc/mysql/my.cnf my.cnf /etc/mysql/my.cnf.fallback 100",
                                   "update-alternatives --query my.cnf",
                                   'update-alternatives --install /etc/mysql/my.cnf my.cnf "/etc/mysql/mariadb.cnf" 500']),
    ("procps w", ["update-alternatives --install /usr/bin/w w /usr/bin/w.procps 50 "
                  "--slave /usr/share/man/man1/w.1.gz w.1.gz /usr/share/man/man1/w.procps.1.gz"]),
    ("fakeroot pair", ["update-alternatives --install /usr/bin/fakeroot fakeroot /usr/bin/fakeroot-sysv 50 "
                       "--slave /usr/share/man/man1/fakeroot.1.gz fakeroot.1.gz /usr/share/man/man1/fakeroot-sysv.1.gz",
                       "update-alternatives --install /usr/bin/fakeroot fakeroot /usr/bin/fakeroot-tcp 30 "
                       "--slave /usr/share/man/man1/fakeroot.1.gz fakeroot.1.gz /usr/share/man/man1/fakeroot-tcp.1.gz"]),
    ("browser group", ["update-alternatives --install /usr/bin/x-www-browser x-www-browser /usr/bin/firefox-esr 70 "
                       "--slave /usr/share/man/man1/x-www-browser.1.gz x-www-browser.1.gz "
                       "/usr/share/man/man1/firefox-esr.1.gz",
                       "update-alternatives --install /usr/bin/x-www-browser x-www-browser /usr/bin/chromium 80"]),
    # priorities, modes, ties
    ("lower priority keeps nano", [ED_NANO, ED_TINY]),
    ("higher priority switches", [ED_NANO, ED_EMACS]),
    ("priority tie keeps current", [ED_NANO, ED_VIM.replace(" 30 ", " 40 ")]),
    ("priority tie without current", [ED_VIM.replace(" 30 ", " 40 "), ED_NANO, rm("etc/alternatives/editor"),
                                      "update-alternatives --auto editor"]),
    ("manual survives install", [ED_NANO, ED_VIM, "update-alternatives --set editor /usr/bin/vim.basic", ED_EMACS]),
    ("manual survives install verbose", [ED_NANO, ED_VIM, "update-alternatives --set editor /usr/bin/vim.basic",
                                         ED_EMACS.replace("--install", "--verbose --install")]),
    ("set then auto", [ED_NANO, ED_VIM, "update-alternatives --set editor /usr/bin/vim.basic",
                       "update-alternatives --auto editor"]),
    ("set the current choice", ["update-alternatives --set awk /usr/bin/mawk"]),
    ("set unknown path", [ED_NANO, "update-alternatives --set editor /usr/bin/none"]),
    ("auto of unknown group", ["update-alternatives --auto nosuch"]),
    ("negative and signed priorities", ["update-alternatives --install /usr/bin/editor editor /bin/nano -5",
                                        "update-alternatives --install /usr/bin/editor editor /usr/bin/vim.tiny ' +3'"]),
    # missing files, broken and hand-made links
    ("choice file missing", [ED_NANO, ED_TINY, rm("usr/bin/vim.tiny"), ED_NANO]),
    ("current choice missing", [ED_NANO, ED_VIM, rm("usr/bin/nano"), ED_VIM]),
    ("all choices missing: display", [ED_NANO, rm("usr/bin/nano"), "update-alternatives --display editor"]),
    ("all choices missing: install other", [ED_NANO, rm("usr/bin/nano"), ED_EMACS]),
    ("slave target missing", ["update-alternatives --install /usr/bin/editor editor /bin/nano 40 "
                              "--slave /usr/share/man/man1/editor.1.gz editor.1.gz /usr/share/man/man1/none.1.gz"]),
    ("hand-made /etc/alternatives link", [ED_NANO, ED_VIM, symlink("etc/alternatives/editor", "/usr/bin/less"),
                                          ED_EMACS, "update-alternatives --display editor"]),
    ("dangling /etc/alternatives link", [ED_NANO, symlink("etc/alternatives/editor", "/usr/bin/gone"), ED_VIM]),
    ("master link removed: repair", [ED_NANO, rm("usr/bin/editor"), ED_NANO]),
    ("master link replaced by a file", [ED_NANO, regular("usr/bin/editor"), ED_EMACS]),
    ("master link replaced by a file, --force", [ED_NANO, regular("usr/bin/editor"),
                                                 ED_EMACS.replace("--install", "--force --install")]),
    ("file at LINK before first install", [regular("usr/bin/editor"), ED_NANO]),
    ("file at slave LINK, slave dropped", [ED_VIM, ED_EMACS.replace(" 50", " 10"), regular("usr/share/man/da/man1/editor.1.gz"),
                                           "update-alternatives --set editor /usr/bin/emacs-nox"]),
    ("stale .dpkg-tmp links", [symlink("usr/bin/editor.dpkg-tmp", "/x"), symlink("etc/alternatives/editor.dpkg-tmp", "/y"),
                               ED_NANO]),
    # slaves evolving between versions
    ("slave added in a new version", [ED_NANO_BARE, ED_NANO]),
    ("slave removed in a later version", [ED_NANO, ED_NANO_BARE]),
    ("slave removed, verbose", [ED_NANO, ED_NANO_BARE.replace("--install", "--verbose --install")]),
    ("slave link moved", [ED_NANO, ED_NANO.replace("/usr/share/man/man1/editor.1.gz", "/usr/share/man/man1/ed.1.gz")]),
    ("master link moved", [ED_NANO, ED_NANO.replace("/usr/bin/editor editor", "/usr/bin/editor2 editor")]),
    ("slaves of the chosen master only", [ED_TINY, ED_NANO]),
    ("slave set changes with the choice", [ED_NANO, ED_TINY, "update-alternatives --set editor /usr/bin/vim.tiny",
                                           "update-alternatives --set editor /bin/nano"]),
    # removals
    ("remove current: next best", [ED_NANO, ED_VIM, "update-alternatives --remove editor /bin/nano"]),
    ("remove last choice", [ED_NANO, "update-alternatives --remove editor /bin/nano"]),
    ("remove other choice", [ED_NANO, ED_VIM, "update-alternatives --remove editor /usr/bin/vim.basic"]),
    ("remove unregistered path", [ED_NANO, "update-alternatives --verbose --remove editor /usr/bin/vim.tiny"]),
    ("remove from unknown group", ["update-alternatives --remove editor /bin/nano"]),
    ("remove from unknown group verbose", ["update-alternatives --verbose --remove editor /bin/nano"]),
    ("remove manual choice", [ED_NANO, ED_VIM, "update-alternatives --set editor /usr/bin/vim.basic",
                              "update-alternatives --remove editor /usr/bin/vim.basic"]),
    ("remove pager /bin/more", ["update-alternatives --remove pager /bin/more"]),
    ("remove which", ["update-alternatives --remove which /usr/bin/which.debianutils"]),
    ("remove rmt quiet", ["update-alternatives --quiet --remove rmt /usr/sbin/rmt-tar"]),
    ("remove-all awk", ["update-alternatives --remove-all awk"]),
    ("remove-all with a file at LINK", [regular("usr/bin/pager"), "update-alternatives --remove-all pager"]),
    ("remove with a file at LINK, --force", [regular("usr/bin/pager"), "update-alternatives --force --remove pager /bin/more"]),
    # queries
    ("query awk", ["update-alternatives --query awk"]),
    ("display awk", ["update-alternatives --display awk"]),
    ("list which", ["update-alternatives --list which"]),
    ("query which", ["update-alternatives --query which"]),
    ("display builtins", ["update-alternatives --display builtins.7.gz"]),
    ("query manual group", [ED_NANO, ED_VIM, "update-alternatives --set editor /usr/bin/vim.basic",
                            "update-alternatives --query editor", "update-alternatives --display editor"]),
    ("query absent link", [ED_NANO, rm("etc/alternatives/editor"), "update-alternatives --query editor",
                           "update-alternatives --display editor"]),
    ("query unknown", ["update-alternatives --query my.cnf"]),
    ("get-selections", [ED_NANO, "update-alternatives --get-selections"]),
    ("set-selections", [ED_NANO, ED_VIM, ("update-alternatives --set-selections", None,
                                          b"editor manual /usr/bin/vim.basic\nawk auto /usr/bin/mawk\n"
                                          b"pager\tmanual  /bin/more\nnosuch auto /x\nbad\nname-only \n"
                                          b"two words\nrmt manual /usr/sbin/none\n"),
                        "update-alternatives --get-selections"]),
    ("set-selections twice the same group", [ED_NANO, ED_VIM, ("update-alternatives --set-selections", None,
                                                               b"editor manual /usr/bin/vim.basic\n"
                                                               b"editor manual /bin/nano\n")]),
    ("set-selections unterminated", [("update-alternatives --set-selections", None,
                                      b"awk auto /usr/bin/mawk\npager auto /bin/more")]),
    ("set-selections too long", [("update-alternatives --set-selections", None, b"awk auto " + b"x" * 1100 + b"\n")]),
    # options and directories
    ("debug install", [ED_NANO.replace("--install", "--debug --install")]),
    ("own altdir, admindir and log", ["update-alternatives --altdir /etc/alt2 --admindir /var/lib/alt2 "
                                      "--log /var/log/alt2/ua.log " + ED_NANO.split(" ", 1)[1],
                                      "update-alternatives --altdir /etc/alt2 --admindir /var/lib/alt2 --query editor"]),
    ("--root /", ["update-alternatives --root / " + ED_NANO.split(" ", 1)[1], "update-alternatives --root / --display editor"]),
    ("DPKG_ROOT=/ and --altdir", [("update-alternatives --verbose --altdir /etc/alt3 " + ED_NANO.split(" ", 1)[1],
                                   {"DPKG_ROOT": "/"})]),
    ("DPKG_ADMINDIR elsewhere", [(ED_NANO, {"DPKG_ADMINDIR": "/var/lib/dpkg2"})]),
    ("DPKG_ROOT in a subdirectory", [regular("srv/img/usr/bin/nano"), write("srv/img/usr/bin/.keep", b""),
                                      ("update-alternatives --install /usr/bin/editor editor /usr/bin/nano 40",
                                       {"DPKG_ROOT": "/srv/img"}),
                                      ("update-alternatives --remove editor /usr/bin/nano", {"DPKG_ROOT": "/srv/img"})]),
    ("log stamped in TZ's zone", [(ED_NANO, {"TZ": "Europe/Paris"}), (ED_VIM, {"TZ": ":Asia/Tokyo"})]),
    ("log stamped in /etc/localtime's zone", [symlink("etc/localtime", "/usr/share/zoneinfo/Asia/Tokyo"),
                                              (ED_NANO, {"TZ": None})]),
    ("log with TZ naming a file", [(ED_NANO, {"TZ": ":/usr/share/zoneinfo/Europe/Paris"})]),
    ("--instdir only shortens --altdir", ["update-alternatives --instdir /etc --altdir /etc/alt4 " + ED_NANO.split(" ", 1)[1]]),
    # bad arguments
    ("no action", ["update-alternatives"]),
    ("no action, options only", ["update-alternatives --quiet --force"]),
    ("missing priority", ["update-alternatives --install /usr/bin/editor editor /bin/nano"]),
    ("relative link", ["update-alternatives --install usr/bin/editor editor /bin/nano 40"]),
    ("relative path", ["update-alternatives --install /usr/bin/editor editor bin/nano 40"]),
    ("link equal to path", ["update-alternatives --install /bin/nano nano /bin/nano 10"]),
    ("name with a slash", ["update-alternatives --install /usr/bin/ed ed/x /bin/nano 10"]),
    ("name with a space", ["update-alternatives --display 'ed x'"]),
    ("remove relative path", ["update-alternatives --remove editor bin/nano"]),
    ("path does not exist", ["update-alternatives --install /usr/bin/editor editor /usr/bin/none 10"]),
    ("priority not a number", ["update-alternatives --install /usr/bin/editor editor /bin/nano 4o"]),
    ("priority out of range", ["update-alternatives --install /usr/bin/editor editor /bin/nano 99999999999"]),
    ("duplicate slave name", [ED_NANO + " --slave /usr/share/man/man1/ed2.1.gz editor.1.gz /usr/share/man/man1/nano.1.gz"]),
    ("duplicate slave link", [ED_NANO + " --slave /usr/share/man/man1/editor.1.gz ed2 /usr/share/man/man1/nano.1.gz"]),
    ("slave name is the master", [ED_NANO_BARE + " --slave /usr/bin/ed2 editor /bin/nano"]),
    ("slave link is the master", [ED_NANO_BARE + " --slave /usr/bin/editor ed2 /bin/nano"]),
    ("slave link equal to path", [ED_NANO_BARE + " --slave /bin/nano ed2 /bin/nano"]),
    ("slave relative path", [ED_NANO_BARE + " --slave /usr/bin/ed2 ed2 bin/nano"]),
    ("slave missing arguments", [ED_NANO_BARE + " --slave /usr/bin/ed2 ed2"]),
    ("slave without install", ["update-alternatives --slave /usr/bin/ed2 ed2 /bin/nano"]),
    ("two actions", [ED_NANO_BARE + " --remove editor /bin/nano"]),
    ("unknown option", ["update-alternatives --bogus --install /usr/bin/editor editor /bin/nano 40"]),
    ("unknown argument", ["update-alternatives --install /usr/bin/editor editor /bin/nano 40 extra"]),
    ("option needs a value", ["update-alternatives --altdir"]),
    ("master is a slave elsewhere", ["update-alternatives --install /usr/bin/nawk2 nawk /usr/bin/gawk 5"]),
    ("link managed by another group", ["update-alternatives --install /usr/bin/awk myawk /usr/bin/gawk 5"]),
    ("slave is a master elsewhere", [ED_NANO_BARE + " --slave /usr/bin/awk2 awk /usr/bin/gawk"]),
    ("slave is a slave elsewhere", [ED_NANO_BARE + " --slave /usr/bin/nawk3 nawk /usr/bin/gawk"]),
    ("slave link managed by another group", [ED_NANO_BARE + " --slave /usr/bin/nawk ed2 /usr/bin/gawk"]),
    ("slave link is another slave's", [GAWK.replace("--slave /usr/bin/nawk nawk", "--slave /usr/bin/nawk nawk2")]),
    # damaged admin files
    ("corrupt admin file", [write("var/lib/dpkg/alternatives/editor", b"auto\n/usr/bin/editor\nx\n"),
                            "update-alternatives --display editor", "update-alternatives --get-selections", ED_NANO]),
    ("bad status", [write("var/lib/dpkg/alternatives/editor", b"weird\n/usr/bin/editor\n\n/bin/nano\n40\n\n"),
                    "update-alternatives --query editor"]),
    ("bad priority", [write("var/lib/dpkg/alternatives/editor", b"auto\n/usr/bin/editor\n\n/bin/nano\nhigh\n\n"),
                      "update-alternatives --query editor"]),
    ("unterminated admin file", [write("var/lib/dpkg/alternatives/editor", b"auto\n/usr/bin/editor\n\n/bin/nano\n40\n"),
                                 "update-alternatives --list editor"]),
    ("empty admin file", [write("var/lib/dpkg/alternatives/editor", b""), "update-alternatives --display editor", ED_NANO]),
]


@pytest.mark.parametrize("steps", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_update_alternatives(ab, steps):
    zoned = any(isinstance(s, tuple) and s[1] and "TZ" in s[1] for s in steps)
    if zoned and not all(os.path.exists(os.path.join("/usr/share/zoneinfo", z)) for z in ZONES):
        pytest.skip(f"the host has no tzdata for {ZONES}")
    for step in steps:
        if callable(step):
            prep(ab, step)
            continue
        if isinstance(step, tuple):
            cmd, env, *rest = step
            both(ab, cmd, env, rest[0] if rest else b"")
        else:
            both(ab, step)


def test_package_life(ab):
    """nano, vim-tiny and vim installed, upgraded, switched and removed in turn, as dpkg runs them."""
    for step in [ED_NANO, ED_TINY, ED_VIM, ED_NANO, "update-alternatives --set editor /usr/bin/vim.tiny",
                 ED_VIM, "update-alternatives --remove editor /usr/bin/vim.tiny", ED_NANO_BARE,
                 "update-alternatives --remove editor /bin/nano", "update-alternatives --remove editor /usr/bin/vim.basic",
                 "update-alternatives --get-selections"]:
        both(ab, step, PKG_ENV)


@pytest.mark.parametrize("cmd", ["update-alternatives --config awk", "update-alternatives --all",
                                 "update-alternatives --skip-auto --config awk", "update-alternatives --help"])
def test_interactive_forms_defer(ab, cmd):
    """--config/--all ask the administrator; the model defers before touching anything."""
    _, b = ab
    before = snapshot(b)
    with pytest.raises(Defer):
        run_model(b, shlex.split(cmd), None)
    assert snapshot(b) == before


def test_rename_refused_defers(ab):
    """LINK is a directory and --force: rename(2) fails with EISDIR, the real program would run
    mv (moving the link into the directory); the model defers and leaves the tree as it was."""
    _, b = ab
    os.makedirs(os.path.join(b, "usr/bin/editor/sub"))
    before = snapshot(b)
    with pytest.raises(Defer, match="mv"):
        run_model(b, shlex.split(ED_NANO.replace("--install", "--force --install")), None)
    assert snapshot(b) == before


def test_admin_files_round_trip(ab):
    """The model's admin files are dpkg's: read back by the real program, rendered identically."""
    a, b = ab
    for step in (ED_NANO, ED_VIM, GAWK, NC):
        both(ab, step)
    d = os.path.join(b, "var/lib/dpkg/alternatives")
    for n in sorted(os.listdir(d)):
        data = open(os.path.join(d, n), "rb").read()
        assert parse_admin(n, data, n).render().encode() == data
    assert run_real(b, ["update-alternatives", "--get-selections"], None, b"") == \
        run_real(a, ["update-alternatives", "--get-selections"], None, b"")
