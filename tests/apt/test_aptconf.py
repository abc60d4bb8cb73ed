"""nuwa.apt.aptconf: apt.conf as apt reads it, and the image's architectures.

Judges: ``apt-config dump`` in a chroot of a real bookworm tree (the lines a case's files add
to the tree's own dump must be exactly the lines Nuwa's tree adds to its dump of the tree's
own files), apt's syntax errors, and ``apt-get indextargets`` for the architectures.
"""

from __future__ import annotations

import pytest

from aptconfig_judge import AptChroot, apt_messages
from nuwa.apt.aptconf import AptConfig, image_architectures, parse_config, read_apt_config, string_to_bool
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS

CASES = [
    ("plain and nested", {"etc/apt/apt.conf.d/50nuwa": (
        '// comment\nAcquire::http::Proxy "http://proxy.invalid:3128/";  # trailing\n'
        'acquire::HTTP::proxy::host.invalid "DIRECT";\n'
        '/* multi\n line */ Acquire::Check-Valid-Until "false";\n'
        'Foo { Bar { Baz "1"; Qux:: "a"; Qux:: "b"; }; Empty { }; };\nFoo::Bar::Qux:: "c";\n'
        'Joined "a" "b";\nUnquoted word;\nTab\t"x";\nQuoted "has // and # inside";\n'
        'APT { Architectures { "amd64"; "i386"; }; };\n')}),
    ("clear and order", {
        "etc/apt/apt.conf.d/10a": 'List { "a"; "b"; };\nValue "first";\n',
        "etc/apt/apt.conf.d/20b.conf": '#clear List;\nList:: "c";\nValue "second";\n',
        "etc/apt/apt.conf.d/30c.disabled": 'Value "ignored";\n',
        "etc/apt/apt.conf.d/31c.bak": 'Value "ignored";\n',
        "etc/apt/apt.conf.d/.hidden": 'Value "ignored";\n',
        "etc/apt/apt.conf.d/40-d:e": 'Value "bad name";\n',
        "etc/apt/apt.conf": 'Value "main last";\n'}),
    ("include", {
        "etc/apt/apt.conf.d/50inc": '#include "/etc/apt/extra.conf";\n#include "/etc/apt/more/";\n',
        "etc/apt/extra.conf": 'Included "yes";\n',
        "etc/apt/more/1.conf": 'More:: "1";\n',
        "etc/apt/more/2": 'More:: "2";\n',
        "etc/apt/more/3.txt": 'More:: "3";\n'}),
    ("multi-line value", {"etc/apt/apt.conf.d/50m": 'Key\n  "value";\nBlock\n{\n  Inner "x";\n};\n'}),
    ("error: junk after value", {"etc/apt/apt.conf.d/50e": 'A::B "x" "y" z;\n'}),
    ("error: block without name", {"etc/apt/apt.conf.d/50e": 'ok "1";\n{ "x"; };\n'}),
    ("error: unterminated", {"etc/apt/apt.conf.d/50e": 'A "1";\nB "2"\n'}),
    ("error: directive in block", {"etc/apt/apt.conf.d/50e": 'A { #clear B; };\n'}),
    ("a #word is a comment", {"etc/apt/apt.conf.d/50e": "#frobnicate X;\nKept \"1\";\n"}),
    ("error: missing include", {"etc/apt/apt.conf.d/50e": '#include "/nonexistent.conf";\n'}),
]


@pytest.fixture(scope="module")
def chroot(tmp_path_factory):
    c = AptChroot(str(tmp_path_factory.mktemp("apt-conf")))
    c.reset()
    r = c.apt("apt-config", "dump")
    assert r.returncode == 0, r.stderr
    c.baseline_apt = r.stdout.splitlines()
    c.baseline_nuwa = read_apt_config(HostDirFS(c.root)).dump()
    return c


def added(lines: list[str], baseline: list[str]) -> list[str]:
    base = set(baseline)
    return [ln for ln in lines if ln not in base]


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,files", CASES, ids=[c[0] for c in CASES])
def test_config_as_apt_config_dumps_it(chroot, name, files):
    chroot.reset()
    for rel, text in files.items():
        chroot.write(rel, text)
    r = chroot.apt("apt-config", "dump")
    errors = apt_messages(r.stderr, "E")
    if errors:
        assert r.returncode != 0
        with pytest.raises(InvalidInputError) as e:
            read_apt_config(HostDirFS(chroot.root))
        # apt: "Syntax error /etc/apt/apt.conf.d/50e:2: ..." - the same file and line
        at = errors[0].split("Syntax error ", 1)[-1].split(": ", 1)[0]
        if at.startswith("/etc/apt/apt.conf.d/50e:"):
            assert str(e.value).startswith(at + ": "), (str(e.value), errors)
        else:
            assert "/etc/apt/apt.conf.d/50e" in str(e.value) and "\n" not in str(e.value)
        return
    assert r.returncode == 0, r.stderr
    conf = read_apt_config(HostDirFS(chroot.root))
    ours, theirs = conf.dump(), r.stdout.splitlines()
    # apt's dump also holds its compiled-in defaults, which Nuwa does not model: what the
    # case's files add on either side must be in the other's whole dump, list items in order
    new_ours, new_theirs = added(ours, chroot.baseline_nuwa), added(theirs, chroot.baseline_apt)
    assert new_theirs and set(new_theirs) <= set(ours)  # every case sets something
    assert set(new_ours) <= set(theirs)
    for key in {ln.split(":: ", 1)[0] for ln in new_ours if ":: " in ln}:
        assert [ln for ln in ours if ln.startswith(key + ":: ")] == [ln for ln in theirs if ln.startswith(key + ":: ")]


ARCH_CASES = [
    ("native only", "amd64\n", ""),
    ("foreign from dpkg", "amd64\ni386\narm64\n", ""),
    ("APT::Architectures", "amd64\ni386\n", 'APT::Architectures { "arm64"; "armhf"; };'),
    ("APT::Architectures as a value", "amd64\n", 'APT::Architectures "i386,amd64";'),
    ("barbarian", "amd64\ni386\n", 'APT::BarbarianArchitectures:: "i386";'),
]


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,arch_file,conf", ARCH_CASES, ids=[c[0] for c in ARCH_CASES])
def test_architectures_as_apt_uses_them(chroot, name, arch_file, conf):
    chroot.reset()
    chroot.write("var/lib/dpkg/arch", arch_file)
    if conf:
        chroot.write("etc/apt/apt.conf.d/99arch", conf + "\n")
    chroot.write("etc/apt/sources.list", "deb http://a.invalid/d s main\n")
    r = chroot.apt("apt-get", "indextargets", "--no-release-info", "--format", "$(CREATED_BY) $(ARCHITECTURE)")
    assert r.returncode == 0, r.stderr
    want = [ln.split()[1] for ln in r.stdout.splitlines() if ln.startswith("Packages ") and not ln.endswith(" all")]
    assert image_architectures(HostDirFS(chroot.root)) == want


# ---- without a chroot ---------------------------------------------------------------------------
def test_lookups_are_case_insensitive_and_typed():
    conf = AptConfig()
    parse_config('Acquire::HTTP::Proxy "http://p.invalid/";\nA::B "no";\nL { "x"; "y"; };\nV "1,2";\n', conf, "t")
    assert conf.get("acquire::http::proxy") == "http://p.invalid/"
    assert conf.get("Acquire::http::Proxy::other", "d") == "d"
    assert conf.get_bool("a::b", True) is False and conf.get_bool("missing", True) is True
    assert conf.get_list("l") == ["x", "y"] and conf.get_list("V") == ["1", "2"] and conf.get_list("none") == []
    assert conf.exists("ACQUIRE") and not conf.exists("nope")


@pytest.mark.parametrize("text,value", [("yes", True), ("On", True), ("1", True), ("enable", True),
                                        ("no", False), ("FALSE", False), ("0", False), ("maybe", None)])
def test_string_to_bool(text, value):
    assert string_to_bool(text, None) is value


def test_include_stays_inside_the_image():
    fs = MemoryFS()
    fs.makedirs("/etc/apt/apt.conf.d")
    fs.write_bytes("/etc/apt/apt.conf.d/1", b'#include "../../../../etc/apt/x.conf";\n')
    fs.write_bytes("/etc/apt/x.conf", b'Inside "yes";\n')
    assert read_apt_config(fs).get("Inside") == "yes"


def test_include_loop_is_refused():
    fs = MemoryFS()
    fs.makedirs("/etc/apt/apt.conf.d")
    fs.write_bytes("/etc/apt/apt.conf.d/1", b'#include "/etc/apt/apt.conf.d/1";\n')
    with pytest.raises(InvalidInputError, match="too many nested includes"):
        read_apt_config(fs)


def test_architectures_need_a_dpkg_database():
    with pytest.raises(InvalidInputError, match="architecture"):
        image_architectures(MemoryFS(), AptConfig())


PROXY_CASES = [
    ("none", ""),
    ("one for all", 'Acquire::http::Proxy "http://127.0.0.2:9/";'),
    ("per host and DIRECT", 'Acquire::http::Proxy "http://127.0.0.2:9/";\nAcquire::http::Proxy::a.invalid "DIRECT";\n'
                            'Acquire::https::Proxy::b.invalid "http://127.0.0.3:9";'),
    ("https first", 'Acquire::http { Proxy "http://127.0.0.2:9"; };\nAcquire::https::Proxy "http://127.0.0.4:9/";\n'
                    'acquire::HTTP::proxy::B.invalid "http://127.0.0.5:9";'),
]


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,conf", PROXY_CASES, ids=[c[0] for c in PROXY_CASES])
def test_proxy_as_apt_connects(chroot, name, conf):
    """apt-get update in the chroot, with proxies on refused loopback ports: the address apt
    tries to connect to is the proxy Nuwa names (or the server itself when there is none)."""
    from nuwa.apt.aptconf import proxy_for

    chroot.reset()
    urls = {"a": "http://a.invalid/d", "b": "https://b.invalid/d"}
    chroot.write("etc/apt/sources.list", "".join(f"deb {u} s main\n" for u in urls.values()))
    if conf:
        chroot.write("etc/apt/apt.conf.d/90proxy", conf + "\n")
    r = chroot.apt("apt-get", "update", "-o", "APT::Sandbox::User=root", "-o", "Acquire::Retries=0")
    tried = {}
    for line in r.stdout.splitlines():
        if line.startswith("Err:"):
            current = line.split()[1]
        elif "Could not connect to " in line:
            tried[current] = line.split("Could not connect to ", 1)[1].split(" ", 1)[0]
        elif "resolv" in line or "Could not resolve" in line:
            tried[current] = "direct"
    got = {}
    fs_conf = read_apt_config(HostDirFS(chroot.root))
    for url in urls.values():
        proxy = proxy_for(fs_conf, url + "/dists/s/InRelease")
        got[url] = "direct" if proxy is None else proxy.split("://", 1)[1].rstrip("/")
    assert tried == got, r.stdout


def test_proxy_without_a_chroot():
    from nuwa.apt.aptconf import check_valid_until, proxy_for

    conf = AptConfig()
    parse_config('Acquire::http::Proxy "http://p.invalid:3128/";\nAcquire::http::Proxy::local.invalid "DIRECT";\n'
                 'Acquire::http::Proxy-Auto-Detect "/usr/bin/detect";\nAcquire::Check-Valid-Until "no";\n', conf, "t")
    warnings: list[str] = []
    assert proxy_for(conf, "https://u:p@host.invalid:8443/x", warnings.append) == "http://p.invalid:3128/"
    assert proxy_for(conf, "http://local.invalid:80/x") is None
    assert proxy_for(conf, "file:/srv/repo") is None
    assert len(warnings) == 1 and "not run" in warnings[0]
    assert check_valid_until(conf) is False and check_valid_until(AptConfig()) is True
