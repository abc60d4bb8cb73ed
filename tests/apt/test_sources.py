"""nuwa.apt.sources: the image's sources as apt reads them.

The judge is apt 2.6 itself: each case writes sources files into a chroot of a real bookworm
tree, and the Packages targets ``apt-get indextargets`` lists (URI, suite, component,
architecture), its errors and its "configured multiple times" warnings must be what Nuwa
reads from the same tree.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aptconfig_judge import AptChroot, apt_messages
from nuwa.apt.sources import Source, merge_items, parse_repo_spec, parse_sources_text, read_sources
from nuwa.errors import InvalidInputError
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS

FP = "4D64FEC119C2029067D6E791F8D2585B8783D481"

# (name, {path: text}, dpkg foreign architectures); each is judged by apt
CASES = [
    ("one-line basics", {"etc/apt/sources.list": (
        "# a comment\n"
        "deb http://example.invalid/debian bookworm main contrib  # trailing\n"
        "\n   deb   http://example.invalid/debian   bookworm-updates   main\n"
        "deb-src http://example.invalid/debian bookworm main\n"
        "deb file:///srv/flat ./\n"
        "deb [trusted=yes] file:/srv/sub dir/\n")}, ()),
    ("options", {"etc/apt/sources.list": (
        "deb [ arch=amd64,i386 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://a.invalid/d bookworm main\n"
        f"deb [arch+=arm64 signed-by={FP}] http://b.invalid/d bookworm main\n"
        "deb [arch-=i386] http://c.invalid/d bookworm main\n"
        "deb [check-valid-until=no lang=none]  http://d.invalid/d bookworm main\n"
        "deb [arch=amd64]http://e.invalid/d bookworm main\n"
        "deb [arch=i386 #]  http://f.invalid/$(ARCH) bookworm main\n")}, ("i386",)),
    ("deb822", {"etc/apt/sources.list.d/debian.sources": (
        "# comment\n"
        "Types: deb deb-src\n"
        "URIs: http://a.invalid/debian http://b.invalid/debian\n"
        "Suites: bookworm\n bookworm-updates\n"
        "Components: main non-free-firmware\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        "\n"
        "Types: deb\n"
        "URIs: http://c.invalid/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "Architectures: i386\n"
        "Enabled: no\n"
        "\n"
        "Types: deb\n"
        "URIs: file:/srv/flat\n"
        "Suites: $(ARCH)/\n"
        "X-Repolib-Name: flat\n")}, ()),
    ("files in order and filtered", {
        "etc/apt/sources.list": "deb http://main.invalid/d s main\n",
        "etc/apt/sources.list.d/b.list": "deb http://b.invalid/d s main\n",
        "etc/apt/sources.list.d/a.list": "deb http://a.invalid/d s main\n",
        "etc/apt/sources.list.d/c.sources": "Types: deb\nURIs: http://c.invalid/d\nSuites: s\nComponents: main\n",
        "etc/apt/sources.list.d/d.list.disabled": "deb http://d.invalid/d s main\n",
        "etc/apt/sources.list.d/e.list.save": "deb http://e.invalid/d s main\n",
        "etc/apt/sources.list.d/f": "deb http://f.invalid/d s main\n",
        "etc/apt/sources.list.d/.g.list": "deb http://g.invalid/d s main\n",
        "etc/apt/sources.list.d/h h.list": "deb http://h.invalid/d s main\n",
        "etc/apt/sources.list.d/i+.list": "deb http://i.invalid/d s main\n",
        "etc/apt/sources.list.d/j.conf": "deb http://j.invalid/d s main\n"}, ()),
    ("duplicates", {"etc/apt/sources.list": (
        "deb http://a.invalid/d bookworm main contrib\n"
        "deb http://a.invalid/d/ bookworm main\n"
        "deb [arch=i386] http://a.invalid/d bookworm contrib\n"),
        "etc/apt/sources.list.d/x.sources": "Types: deb\nURIs: http://a.invalid/d\nSuites: bookworm\nComponents: contrib non-free\n"},
     ("i386",)),
    ("apt.conf architectures", {
        "etc/apt/apt.conf.d/99arch": 'APT::Architectures { "arm64"; "amd64"; };\n',
        "etc/apt/sources.list": "deb http://a.invalid/d bookworm main\ndeb [arch+=armhf] http://b.invalid/d bookworm main\n"},
     ("i386",)),
    ("conflicting trusted", {"etc/apt/sources.list": (
        "deb [trusted=yes] http://a.invalid/d bookworm main\ndeb http://a.invalid/d bookworm contrib\n")}, ()),
    ("conflicting signed-by", {"etc/apt/sources.list": (
        "deb [signed-by=/a.gpg] http://a.invalid/d bookworm main\ndeb [signed-by=/b.gpg] http://a.invalid/d bookworm contrib\n")}, ()),
    ("signed-by then none", {"etc/apt/sources.list": (
        "deb [signed-by=/a.gpg] http://a.invalid/d bookworm main\ndeb http://a.invalid/d bookworm contrib\n")}, ()),
    ("none then signed-by", {"etc/apt/sources.list": (
        "deb http://a.invalid/d bookworm main\ndeb [signed-by=/a.gpg] http://a.invalid/d bookworm contrib\n")}, ()),
    ("deb-src takes part in conflicts", {"etc/apt/sources.list": (
        "deb [trusted=yes] http://a.invalid/d s main\ndeb-src http://a.invalid/d s main\n")}, ()),
    ("deb-src with its own options", {"etc/apt/sources.list": (
        "deb [arch=amd64] http://a.invalid/d s main\ndeb-src [lang=de] http://a.invalid/d s main\n")}, ()),
    ("conflicting allow-insecure", {"etc/apt/sources.list": (
        "deb [allow-insecure=yes] http://a.invalid/d s main\ndeb http://a.invalid/d s contrib\n")}, ()),
    ("allow-insecure=no is the default", {"etc/apt/sources.list": (
        "deb [allow-insecure=no] http://a.invalid/d s main\ndeb http://a.invalid/d s contrib\n")}, ()),
    ("conflicting valid-until-min", {"etc/apt/sources.list": (
        "deb [valid-until-min=100] http://a.invalid/d s main\ndeb http://a.invalid/d s contrib\n")}, ()),
    ("valid-until-min set late", {"etc/apt/sources.list": (
        "deb http://a.invalid/d s main\ndeb [valid-until-min=100] http://a.invalid/d s contrib\n")}, ()),
    ("conflicting check-date", {"etc/apt/sources.list": (
        "deb [check-date=no] http://a.invalid/d s main\ndeb [check-date=yes] http://a.invalid/d s contrib\n")}, ()),
    ("apt.conf allows insecure", {"etc/apt/apt.conf.d/99i": 'Acquire::AllowInsecureRepositories "true";\n',
                                  "etc/apt/sources.list": (
        "deb [allow-insecure=yes] http://a.invalid/d s main\ndeb http://a.invalid/d s contrib\n")}, ()),
    ("deb822 line without colon", {"etc/apt/sources.list.d/x.sources": "Types: deb\nURIs http://a.invalid/d\nSuites: s\nComponents: main\n"}, ()),
    ("deb822 starts indented", {"etc/apt/sources.list.d/x.sources": " Types: deb\nURIs: http://a.invalid/d\nSuites: s\nComponents: main\n"}, ()),
    ("deb822 indented # continues", {"etc/apt/sources.list.d/x.sources": (
        "Types: deb\n# c\nURIs: http://a.invalid/d\n  # indented\nSuites: s\nComponents: main\n")}, ()),
    ("deb822 Enabled not a boolean, CRLF", {"etc/apt/sources.list.d/x.sources": (
        "Types: deb\r\nURIs: http://a.invalid/d\r\nSuites: s\r\nComponents: main\r\nEnabled: bogus\r\n")}, ()),
    ("bad fingerprint", {"etc/apt/sources.list": "deb [signed-by=ABCDEF] http://a.invalid/d bookworm main\n"}, ()),
    ("unknown type", {"etc/apt/sources.list": "rpm http://a.invalid/d bookworm main\n"}, ()),
    ("no component", {"etc/apt/sources.list": "deb http://a.invalid/d bookworm\n"}, ()),
    ("flat with component", {"etc/apt/sources.list": "deb http://a.invalid/d ./ main\n"}, ()),
    ("option without value", {"etc/apt/sources.list": "deb [arch=] http://a.invalid/d bookworm main\n"}, ()),
    ("option not assignment", {"etc/apt/sources.list": "deb [arch] http://a.invalid/d bookworm main\n"}, ()),
    ("options unterminated", {"etc/apt/sources.list": "deb [arch=amd64 http://a.invalid/d bookworm main\n"}, ()),
    ("type only", {"etc/apt/sources.list": "deb\n"}, ()),
    ("uri without scheme", {"etc/apt/sources.list": "deb example.invalid/d bookworm main\n"}, ()),
    ("deb822 without Types", {"etc/apt/sources.list.d/x.sources": "URIs: http://a.invalid/d\nSuites: s\nComponents: main\n"}, ()),
    ("deb822 without Suites", {"etc/apt/sources.list.d/x.sources": "Types: deb\nURIs: http://a.invalid/d\nComponents: main\n"}, ()),
    ("deb822 without Components", {"etc/apt/sources.list.d/x.sources": "Types: deb\nURIs: http://a.invalid/d\nSuites: s\n"}, ()),
    ("deb822 flat with Components", {"etc/apt/sources.list.d/x.sources": "Types: deb\nURIs: http://a.invalid/d\nSuites: ./\nComponents: main\n"}, ()),
]


@pytest.fixture(scope="module")
def chroot(tmp_path_factory):
    return AptChroot(str(tmp_path_factory.mktemp("apt-sources")))


def apt_targets(chroot: AptChroot):
    """(targets, errors, duplicate warnings) as apt-get indextargets reports them."""
    r = chroot.apt("apt-get", "indextargets", "--no-release-info", "--format",
                   "$(CREATED_BY) $(TARGET_OF) $(REPO_URI) $(RELEASE) $(COMPONENT) $(ARCHITECTURE)")
    targets = set()
    for line in r.stdout.splitlines():
        created, of, uri, suite, comp, arch = line.split(" ")
        if created != "Packages" or of != "deb" or arch == "all":
            continue
        targets.add((uri.rstrip("/"), suite, "" if comp == "$(COMPONENT)" else comp,
                     "" if arch == "$(ARCHITECTURE)" else arch))
    errors = apt_messages(r.stderr, "E")
    dups = sorted(dup_target(w) for w in apt_messages(r.stderr, "W")
                  if "configured multiple times" in w and "Target Packages" in w and "binary-all" not in w)
    assert r.returncode == (100 if errors else 0), r.stderr
    return targets, errors, dups


def nuwa_targets(root: str):
    fs = HostDirFS(root)
    warnings: list[str] = []
    from nuwa.apt.aptconf import image_architectures

    sources = read_sources(fs, warnings.append)
    archs = image_architectures(fs)
    targets = set()
    for s in sources:
        if s.flat:
            targets.add((s.uri, s.suite, "", ""))
            continue
        for c in s.components:
            for a in (s.architectures if s.architectures is not None else archs):
                targets.add((s.uri, s.suite, c, a))
    return targets, sorted(dup_target(w) for w in warnings if "configured multiple times" in w)


def dup_target(warning: str) -> tuple[str, str]:
    """(target, file of the second entry) of a "configured multiple times" warning: apt numbers
    deb822 entries by stanza, Nuwa by line, so line numbers are left out."""
    target = warning.split("(", 1)[1].split(")", 1)[0]
    return target, warning.rsplit(" and ", 1)[1].rsplit(":", 1)[0]


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.parametrize("name,files,foreign", CASES, ids=[c[0] for c in CASES])
def test_sources_as_apt_reads_them(chroot, name, files, foreign):
    chroot.reset()
    if foreign:
        chroot.write("var/lib/dpkg/arch", "amd64\n" + "".join(a + "\n" for a in foreign))
    for rel, text in files.items():
        chroot.write(rel, text)
    want, errors, dups = apt_targets(chroot)
    if errors:
        with pytest.raises(InvalidInputError) as e:
            nuwa_targets(chroot.root)
        msg = str(e.value)
        assert "\n" not in msg and "/etc/apt/sources.list" in msg, msg
        return
    got, warned = nuwa_targets(chroot.root)
    assert got == want
    # apt names the two entries by file:line (deb822: by stanza number), Nuwa by file:line
    assert warned == dups


# ---- parsing details, without a chroot ------------------------------------------------------
def image(files: dict[str, str], arch: str = "amd64") -> MemoryFS:
    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg")
    fs.write_bytes("/var/lib/dpkg/status", f"Package: dpkg\nStatus: install ok installed\nVersion: 1.21.22\n"
                   f"Architecture: {arch}\n\n".encode())
    for path, text in files.items():
        fs.makedirs(os.path.dirname(path))
        fs.write_bytes(path, text.encode())
    return fs


def test_source_fields():
    fs = image({"/etc/apt/sources.list": (
        "deb [trusted=yes check-valid-until=no arch=arm64] http://a.invalid/debian/ bookworm main contrib\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg,/etc/k2.asc] http://b.invalid/d bookworm main\n")})
    a, b = read_sources(fs)
    assert a == Source("http://a.invalid/debian", "bookworm", ("main", "contrib"), ("arm64",), trusted=True,
                       check_valid_until=False, where="/etc/apt/sources.list:1")
    assert b.signed_by == ("/usr/share/keyrings/k.gpg", "/etc/k2.asc") and b.check_valid_until is None


def test_inline_key_is_kept_as_armored_bytes():
    text = ("Types: deb\nURIs: http://a.invalid/d\nSuites: s\nComponents: main\nSigned-By:\n"
            " -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mDMEZ...\n -----END PGP PUBLIC KEY BLOCK-----\n")
    (s,) = read_sources(image({"/etc/apt/sources.list.d/x.sources": text}))
    assert s.signed_by == () and s.signed_by_key == (
        b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ...\n-----END PGP PUBLIC KEY BLOCK-----\n")


@pytest.mark.parametrize("text,where,words", [
    ("deb http://a.invalid/d s main\nfoo http://a.invalid/d s main\n", "/etc/apt/sources.list:2", "not known"),
    ("\n\ndeb [arch=amd64 http://a.invalid/d s main\n", "/etc/apt/sources.list:3", "not assignment"),
    ("deb [a=b] http://a.invalid/d s\n", "/etc/apt/sources.list:1", "Component"),
])
def test_errors_name_file_and_line(text, where, words):
    with pytest.raises(InvalidInputError) as e:
        read_sources(image({"/etc/apt/sources.list": text}))
    assert str(e.value).startswith(where + ": ") and words in str(e.value) and "\n" not in str(e.value)


def test_warnings():
    warnings = []
    read_sources(image({"/etc/apt/sources.list": "deb [signed_by=/k.gpg] http://a.invalid/d s main\n"
                        "deb cdrom:[Debian 12]/ bookworm main\n"
                        "deb [allow-insecure=yes] http://b.invalid/d s main\n"}), warnings.append)
    assert any("unknown option 'signed_by'" in w and "sources.list:1" in w for w in warnings)
    assert any("cdrom" in w and "skipped" in w for w in warnings)
    assert any("allow-insecure" in w for w in warnings)


def test_deb822_duplicate_field_and_unknown_field():
    warnings = []
    (s,) = read_sources(image({"/etc/apt/sources.list.d/x.sources": (
        "Types: deb\nURIs: http://a.invalid/d\nSuites: s\nComponents: main\nComponents: contrib\nFoo: 1\n")}),
        warnings.append)
    assert s.components == ("contrib",)  # the last one, as apt
    assert len(warnings) == 2


def test_no_sources_at_all():
    assert read_sources(image({})) == []


def test_repo_spec_line():
    (s,) = parse_repo_spec("deb [trusted=yes] file:///srv/r/ stable main")
    assert (s.uri, s.suite, s.components, s.trusted, s.where) == ("file:/srv/r", "stable", ("main",), True, "--repo:1")


def test_repo_spec_files_and_directories(tmp_path):
    (tmp_path / "x.sources").write_text("Types: deb\nURIs: http://a.invalid/d\nSuites: s\nComponents: main\n")
    (s,) = parse_repo_spec(str(tmp_path / "x.sources"))
    assert s.uri == "http://a.invalid/d" and s.where.endswith("x.sources:1")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "Packages").write_text("")
    (s,) = parse_repo_spec(f"file:{flat}")
    assert (s.uri, s.suite, s.components, s.flat) == (f"file:{flat}", "./", (), True)
    tree = tmp_path / "tree"
    for d in ("dists/stable/main/binary-amd64", "dists/stable/contrib/binary-all", "dists/old/main/source"):
        (tree / d).mkdir(parents=True)
    os.symlink("stable", tree / "dists" / "bookworm")
    (s,) = parse_repo_spec(str(tree))
    assert (s.uri, s.suite, s.components) == (f"file:{tree}", "stable", ("contrib", "main"))
    with pytest.raises(InvalidInputError):
        parse_repo_spec(str(tmp_path / "missing"))
    with pytest.raises(InvalidInputError):
        parse_repo_spec(str(flat / "Packages"))


def test_merge_keeps_arch_groups_apart():
    items = parse_sources_text("deb http://a.invalid/d s main\ndeb [arch=i386] http://a.invalid/d s contrib\n",
                               "t", False)
    a, b = merge_items(items, ["amd64"])
    assert (a.components, a.architectures, b.components, b.architectures) == (("main",), None, ("contrib",), ("i386",))


def test_sources_files_are_read_inside_the_image(tmp_path):
    """A sources.list.d entry that is a symlink to a host path (absolute or through ..) is
    resolved inside the image, where it does not exist: apt's filter skips it."""
    root = tmp_path / "root"
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text("Package: dpkg\nStatus: install ok installed\nArchitecture: amd64\n\n")
    host = tmp_path / "host.list"
    host.write_text("deb http://evil.invalid/d s main\n")
    os.symlink(str(host), root / "etc/apt/sources.list.d/abs.list")
    os.symlink("../../../../host.list", root / "etc/apt/sources.list.d/rel.list")
    os.symlink(str(host), root / "etc/apt/sources.list")
    (root / "etc/apt/inside.list").write_text("deb http://good.invalid/d s main\n")
    os.symlink("/etc/apt/inside.list", root / "etc/apt/sources.list.d/inside.list")
    assert [s.uri for s in read_sources(HostDirFS(str(root)))] == ["http://good.invalid/d"]


# ---- any text: a result or one clean line of error, never a crash --------------------------
_PIECES = st.sampled_from(list('deb-src []=#:"{};/\\*\n\t ,.!$()aA1%') + [
    "deb ", "http://", "Types:", "URIs:", "Suites:", "Components:", "Signed-By:", "Enabled:", "Package:",
    "Pin:", "Pin-Priority:", "release ", "version ", "#clear", "#include", "signed-by=", "arch+=", "::",
    "/*", "*/", "//"])


@given(st.lists(_PIECES, max_size=60).map("".join))
def test_parsers_never_crash(text):
    from nuwa.apt.aptconf import AptConfig, parse_config
    from nuwa.apt.preferences import parse_preferences

    def quiet(msg):
        assert "\n" not in msg, msg

    for parse in (lambda: merge_items(parse_sources_text(text, "f", False, "amd64", quiet), ["amd64"], quiet),
                  lambda: merge_items(parse_sources_text(text, "f", True, "amd64", quiet), ["amd64"], quiet),
                  lambda: parse_config(text, AptConfig(), "f"),
                  lambda: parse_preferences(text, "f", quiet)):
        try:
            parse()
        except InvalidInputError as e:
            assert "\n" not in str(e) and str(e).startswith("f"), str(e)
