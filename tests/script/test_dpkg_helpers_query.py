"""dpkg-query and dpkg's enquiry actions against the real dpkg 1.21.22 on a bookworm database.

One scratch root (the minbase tree's /var/lib/dpkg and passwd/group) serves every read-only
case: the real program runs with ``--root=SCRATCH``, the model on the same directory as an
image root. Nothing is written by these programs; the tree is compared anyway.
"""

import os
import shlex

import pytest

from debian_tree import bookworm_tree
from dpkghelpers import both, make_scratch, require_dpkg, run_model
from nuwa.script.context import Defer


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    require_dpkg()
    root = str(tmp_path_factory.mktemp("dq") / "root")
    make_scratch(bookworm_tree(), root)
    # a package in config-files state and a local diversion, so -s/-L/-S show those forms
    with open(os.path.join(root, "var/lib/dpkg/status"), "a") as f:
        f.write("\nPackage: gone-pkg\nStatus: deinstall ok config-files\nPriority: optional\n"
                "Section: misc\nInstalled-Size: 5\nMaintainer: T <t@e>\nArchitecture: amd64\n"
                "Version: 1:2.0-1\nConfig-Version: 1:2.0-1\nConffiles:\n /etc/gone.conf 0123456789abcdef0123456789abcdef\n"
                "Description: removed\n long\n")
    with open(os.path.join(root, "var/lib/dpkg/diversions"), "a") as f:
        f.write("/usr/bin/ls\n/usr/bin/ls.local\n:\n")
    return root


QUERY_CASES = [
    # dpkg-query -W as maintainer scripts use it
    "dpkg-query -W",
    "dpkg-query -W -f='${Version}' libc6",
    "dpkg-query -W -f='${Version}\\n' base-files dash",
    "dpkg-query --show --showformat='${Status}' bash",
    "dpkg-query -W -f='${db:Status-Abbrev}' coreutils",
    "dpkg-query -W -f='${binary:Package}\\t${Version}\\t${Architecture}\\n' 'libc*'",
    "dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package;-20}|${Package;10}|\\n' 'lib*'",
    "dpkg-query -W -f='${Status}\\n' nosuchpkg bash",
    "dpkg-query -W -f='${Conffiles}|${Description}|${Essential}${Multi-Arch}${Priority}${Section}|"
    "${source:Package} ${source:Version} ${source:Upstream-Version}\\n' libc6 base-files mawk login gone-pkg",
    "dpkg-query -W -f='${db-fsys:Files}' dash",
    "dpkg-query -W -f='${Triggers-Pending}${Config-Version}${Installed-Size;8}${Maintainer;-5}x${nosuch}y${binary:Summary}\\n' 'e*'",
    "dpkg-query -W -f='${Essential} ${Protected} ${Multi-Arch} ${Status} ${Architecture} ${Version} ${Config-Version} "
    "${db:Status-Want} ${db:Status-Eflag} ${db:Status-Status}\\n'",
    "dpkg-query -W -f='${Depends}|${Pre-Depends}|${Replaces}|${Breaks}|${Provides}|${Recommends}|${Suggests}|${Conflicts}\\n'",
    "dpkg-query -W -f='${package} ${VERSION} ${homepage}\\n' apt",
    "dpkg-query -W -f='${Version;x}' bash",
    "dpkg-query -W -f='${Version' bash",
    "dpkg-query -W -f='' bash",
    "dpkg-query -W -f='a\\tb\\\\c\\qd\\n' bash",
    "dpkg-query -W 'libc6:amd64' 'libc6:i386' 'bash:*' '*:all'",
    "dpkg-query -W gone-pkg",
    # -s, -L, -S, -l, -c
    "dpkg-query -s bash",
    "dpkg-query --status bash dash nosuch",
    "dpkg-query -s gone-pkg",
    "dpkg-query -s 'BAD_name'",
    "dpkg-query -s 'bad&name'",
    "dpkg-query -s 'bash:i386' 'libc6:amd64'",
    "dpkg-query -L dash",
    "dpkg-query -L nosuch coreutils",
    "dpkg-query -L 'foo*'",
    "dpkg-query -L gone-pkg",
    "dpkg-query -S /bin/sh",
    "dpkg-query -S sh.distrib",
    "dpkg-query -S /usr/bin/ls 'libc.so*' nosuchfile",
    "dpkg-query -S '/usr/share/man/man1/sh*'",
    "dpkg-query -S '/usr/bin/*'",
    "dpkg-query -S /usr/lib/ /usr/lib/. //usr/./lib",
    "dpkg-query -S /usr/bin/ls.local",
    "dpkg-query -l",
    "dpkg-query -l 'libc*' nosuch",
    "dpkg-query -l gone-pkg bash",
    "dpkg-query -c dash",
    "dpkg-query -c dash postinst",
    "dpkg-query -c dash md5sums",
    "dpkg-query -c dash list",
    "dpkg-query -c nosuchpkg",
    "dpkg-query -c dash a/b",
    "dpkg-query --control-list dash",
    "dpkg-query --control-show dash postinst",
    "dpkg-query --control-show dash nosuch",
    "dpkg-query --control-show dash",
    # usage errors
    "dpkg-query",
    "dpkg-query -W -s",
    "dpkg-query --foo",
    "dpkg-query -x",
    "dpkg-query -L",
    "dpkg-query -S",
    "dpkg-query -f",
    "dpkg-query --showformat",
    "dpkg-query --show=x",
]

DPKG_CASES = [
    "dpkg -s libc6",
    "dpkg -L base-passwd",
    "dpkg -S /etc/passwd /usr/bin/dpkg",
    "dpkg -l 'lib*' nosuch",
    "dpkg --status nosuch",
    "dpkg --print-architecture",
    "dpkg --print-architecture x",
    "dpkg --print-foreign-architectures",
    "dpkg",
    "dpkg --bogus",
    "dpkg -s -L bash",
]


@pytest.mark.parametrize("cmd", QUERY_CASES + DPKG_CASES)
def test_query(scratch, cmd):
    both(scratch, scratch, shlex.split(cmd), tree=False)


COMPARE = [
    ("1.0", "lt", "2.0"), ("2.0", "lt", "1.0"), ("1.0", "le", "1.0"), ("1.0", "eq", "1.0-0"), ("1:1", "gt", "2"),
    ("1.0~rc1", "lt", "1.0"), ("1.0+b1", "gt", "1.0"), ("1.0", "ne", "1.0.0"), ("1.2-3", "ge", "1.2-3~"),
    ("", "lt", "1.0"), ("1.0", "lt", ""), ("", "eq", ""), ("<unknown>", "lt", "1"), ("", "lt-nl", "1.0"),
    ("1.0", "lt-nl", ""), ("", "le-nl", ""), ("1", "gt-nl", ""), ("", "ge-nl", "1"), ("2", "ge-nl", "1"),
    ("1.0", "<", "2.0"), ("1.0", "<", "1.0"), ("2", ">", "1"), ("1", "<=", "1"), ("1", "<<", "1"),
    ("1", "=", "1"), ("1", ">=", "2"), ("2", ">>", "1"), ("a1", "lt", "2"), ("1::", "lt", "2"),
    ("x:", "lt", "2"), ("1 2", "lt", "3"), ("1_0", "lt", "2"), ("1-", "lt", "2"), ("1:", "lt", "2"),
    ("1: ", "lt", "2"), ("+1:2", "eq", "1:2"), (" 1.0 ", "eq", "1.0"), ("99999999999:1", "lt", "2"),
    ("1.0-a_b", "lt", "2"), ("1", "foo", "2"), ("1.0", "lt", "2.0\t"), ("0:0", "eq", ""),
]


@pytest.mark.parametrize("a,rel,b", COMPARE)
def test_compare_versions(scratch, a, rel, b):
    both(scratch, scratch, ["dpkg", "--compare-versions", a, rel, b], tree=False)


@pytest.mark.parametrize("cmd", [
    "dpkg --compare-versions 1 lt", "dpkg --compare-versions 1 lt 2 3", "dpkg --compare-versions",
    "dpkg --validate-pkgname a_b", "dpkg --validate-pkgname 'A&'", "dpkg --validate-pkgname",
    "dpkg --validate-version a", "dpkg --validate-version 1:", "dpkg --validate-version 1.2-3",
    "dpkg --validate-trigname 'a b'", "dpkg --validate-trigname /usr/lib", "dpkg --validate-archname amd64",
    "dpkg --validate-archname -- -x", "dpkg -x --validate-archname", "dpkg --validate-archname 'a_b' c",
    "dpkg --assert-multi-arch", "dpkg --assert-help", "dpkg --assert-foo", "dpkg --assert-multi-arch x",
    "dpkg --assert", "dpkg --assert x", "dpkg --assert-protected-field",
])
def test_enquiry(scratch, cmd):
    both(scratch, scratch, shlex.split(cmd), tree=False)


@pytest.mark.parametrize("running", ["1.15.0", "1.21.22", "bad version"])
def test_assert_running_version(scratch, running):
    """--assert-* answers for the dpkg that runs the maintainer script (DPKG_RUNNING_VERSION)."""
    for feat in ("multi-arch", "versioned-provides", "protected-field", "working-epoch"):
        both(scratch, scratch, ["dpkg", f"--assert-{feat}"], env={"DPKG_RUNNING_VERSION": running}, tree=False)


def test_admindir_option(scratch):
    """--admindir points at the database (an image path for the model)."""
    for args in (["-W", "-f=${Version}\\n", "bash", "dash"], ["-L", "dash"], ["-c", "dash", "postinst"]):
        both(scratch, scratch, ["dpkg-query", f"--admindir={scratch}/var/lib/dpkg", *args], root_opt=None,
             tree=False, model_argv=["dpkg-query", "--admindir=/var/lib/dpkg", *args])
    st, out, err = run_model(scratch, ["dpkg-query", "--admindir=/nonexistent", "-W", "dash"])
    assert st == 1 and b"no packages found matching dash" in err


@pytest.mark.parametrize("cmd", ["dpkg -i /tmp/x.deb", "dpkg --configure -a", "dpkg -r foo", "dpkg --purge foo",
                                 "dpkg --set-selections", "dpkg --add-architecture i386", "dpkg-query -p bash",
                                 "dpkg-query --load-avail -W", "dpkg --fsys-tarfile x.deb"])
def test_deferred(scratch, cmd):
    """Actions that change packages (or need the available file, or a .deb) are deferred."""
    with pytest.raises(Defer):
        run_model(scratch, shlex.split(cmd))


def test_print_architecture_follows_the_database(tmp_path):
    """The native architecture is the image's dpkg entry's, memoised by the database's bytes
    (status file and journal): a changed entry, a journal record on top of it, and the
    record gone again each give the new answer (real dpkg prints its compiled-in one, so
    this is the model's own contract, not a judge)."""
    root = str(tmp_path / "root")
    make_scratch(bookworm_tree(), root)
    path = os.path.join(root, "var/lib/dpkg/status")
    text = open(path).read()
    start = text.index("Package: dpkg\n")
    end = text.find("\n\n", start)
    para = text[start:end + 1 if end >= 0 else len(text)]
    assert "Architecture: amd64\n" in para

    def arch():
        status, out, err = run_model(root, ["dpkg", "--print-architecture"])
        assert (status, err) == (0, b"")
        return out

    assert arch() == b"amd64\n"
    with open(path, "w") as f:  # in place, same length
        f.write(text[:start] + para.replace("Architecture: amd64", "Architecture: arm64") + text[start + len(para):])
    assert arch() == b"arm64\n"
    updates = os.path.join(root, "var/lib/dpkg/updates")
    os.makedirs(updates, exist_ok=True)
    with open(os.path.join(updates, "0000"), "w") as f:
        f.write(para.replace("Architecture: amd64", "Architecture: i386"))
    assert arch() == b"i386\n"
    os.unlink(os.path.join(updates, "0000"))
    assert arch() == b"arm64\n"
