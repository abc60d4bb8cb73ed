"""gtk-update-icon-cache (GTK 3.24.38, Debian 12) against the real program in a chroot.

A bookworm tree with gtk-update-icon-cache, adwaita-icon-theme and hicolor-icon-theme
installed by mmdebstrap is copied twice; each case restores ``/usr/share/icons`` and ``/tmp``
on both from a pristine copy, applies the same setup (hand-made themes, stale caches, old
times), runs the same command lines with real ``sh`` in a chroot of one copy and with Nuwa's
interpreter on the other, and compares status, stdout, stderr, then every file below the
restored directories byte for byte (``icon-theme.cache`` included). The times the program
sets (the theme directory's mtime becomes the cache's, in whole seconds) are checked on both.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands.caches import iconcache_write as fmt
from nuwa.script.context import Defer, Invocation
from registry_harness import MODELS, ShellPair, write

ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
ICONS = "usr/share/icons"
INDEX = b"[Icon Theme]\nName=Test\nDirectories=16x16/apps\n"


class IconPair(ShellPair):
    PACKAGES = ("gtk-update-icon-cache", "adwaita-icon-theme", "hicolor-icon-theme")
    DIRS = [ICONS, "tmp"]
    FILES: list[str] = []
    PREFIX = "umask 022; "


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return IconPair(str(tmp_path_factory.mktemp("iconcache")))


def theme(name: str, files: dict[str, bytes | str], index: bytes | None = INDEX):
    """A setup: theme ``name`` with ``files`` (bytes: content; str: a symlink target)."""
    def setup(root):
        base = os.path.join(root, ICONS, name)
        os.makedirs(base, exist_ok=True)
        if index is not None:
            write(root, f"{ICONS}/{name}/index.theme", index)
        for rel, data in files.items():
            p = os.path.join(base, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            if isinstance(data, str):
                os.symlink(data, p)
            else:
                write(root, f"{ICONS}/{name}/{rel}", data)
    return setup


def setups(*steps):
    def setup(root):
        for s in steps:
            s(root)
    return setup


def cache_times_follow(pair, rel_dir: str) -> None:
    """On both sides: the theme directory's mtime is the cache's, in whole seconds."""
    for root in (pair.real, pair.model):
        d = os.stat(os.path.join(root, rel_dir))
        c = os.stat(os.path.join(root, rel_dir, "icon-theme.cache"))
        # (its atime too is set in whole seconds, but reading the directory afterwards may
        # update it under relatime: not compared)
        assert d.st_mtime_ns == int(c.st_mtime) * 10**9, root


def test_adwaita_as_its_postinst_runs_it(pair):
    # the corpus case: update-icon-caches (a shell script of the image) runs the program
    pair.check(["update-icon-caches /usr/share/icons/Adwaita; echo $?",
                "update-icon-caches /usr/share/icons/hicolor /usr/share/icons/nothere; echo $?"])
    cache_times_follow(pair, f"{ICONS}/Adwaita")
    assert os.path.getsize(os.path.join(pair.model, ICONS, "Adwaita/icon-theme.cache")) > 100000


def test_adwaita_up_to_date_then_stale(pair):
    # without --force an up-to-date cache is kept; an old one (or a newer icon) is rebuilt
    def old_cache(root):
        os.utime(os.path.join(root, ICONS, "Adwaita/icon-theme.cache"), (1000, 1000))
    pair.check(["gtk-update-icon-cache /usr/share/icons/Adwaita; echo $?",
                "gtk-update-icon-cache /usr/share/icons/Adwaita; echo $?",
                "gtk-update-icon-cache -q /usr/share/icons/Adwaita; echo $?"])
    pair.check(["gtk-update-icon-cache -q -f /usr/share/icons/Adwaita",
                "touch -d 2001-01-01 /usr/share/icons/Adwaita/icon-theme.cache",
                "gtk-update-icon-cache /usr/share/icons/Adwaita; echo $?"])
    pair.check(["gtk-update-icon-cache -t /usr/share/icons/Adwaita; echo $?"],
               setup=theme("Adwaita", {"icon-theme.cache": b"stale"}))
    pair.check(["gtk-update-icon-cache --quiet /usr/share/icons/Adwaita; echo $?"], setup=setups(
        theme("Adwaita", {"icon-theme.cache": b"stale"}), old_cache))
    cache_times_follow(pair, f"{ICONS}/Adwaita")


def test_hicolor_and_empty_theme_remove_the_cache(pair):
    # no icon anywhere: the temporary file and any old cache are removed, nothing printed
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/hicolor; echo $?",
                "gtk-update-icon-cache -f /usr/share/icons/Empty; echo $?"],
               setup=setups(theme("hicolor", {"icon-theme.cache": b"old", ".icon-theme.cache": b"tmp",
                                              "top.png": b"top-level images are ignored"}, index=None),
                            theme("Empty", {"16x16/apps/readme.txt": b"x", "16x16/apps/only.icon": b"[Icon Data]\n"})))


def test_missing_index_and_not_a_theme(pair):
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/NoIndex; echo $?",
                "gtk-update-icon-cache /usr/share/icons/NoIndex/16x16/apps/a.png; echo $?",
                "gtk-update-icon-cache /nonexistent; echo $?",
                "gtk-update-icon-cache -t /nonexistent; echo $?",
                "gtk-update-icon-cache -t /usr/share/icons/NoIndex/16x16/apps/a.png; echo $?",
                "gtk-update-icon-cache --ignore-theme-index -f /usr/share/icons/NoIndex; echo $?",
                "gtk-update-icon-cache; echo $?"],
               setup=theme("NoIndex", {"16x16/apps/a.png": b"png", "16x16/apps/b.svg": b"svg"}, index=None))


ICON_FILE = (b"[Icon Data]\nEmbeddedTextRectangle=1,2,300,70000\nAttachPoints=1,2|30,-4|70000,5\n"
             b"DisplayName=Folder\nDisplayName[de]=Ordner\nDisplayName[fr]=Folder\nDisplayName[sv]=apps\n")


def test_hand_made_theme_with_icon_files(pair):
    # .icon data (rect, attach points, display names whose strings repeat icon and directory
    # names), symbolic icons, nested directories, the same name in several directories,
    # names sharing a directory only through a .icon file, other extensions
    files = {
        "16x16/apps/folder.png": b"p", "16x16/apps/folder.icon": ICON_FILE, "16x16/apps/folder.svg": b"s",
        "16x16/apps/apps.png": b"p", "16x16/apps/Folder.xpm": b"x",
        "16x16/apps/edit-symbolic.symbolic.png": b"p", "16x16/apps/edit-symbolic.svg": b"s",
        "16x16/apps/noext": b"", "16x16/apps/a.b.c.png": b"p", "16x16/apps/.hidden.png": b"p",
        "scalable/apps/folder.svg": b"s", "scalable/apps/folder.icon": b"[Icon Data]\nDisplayName=Folder\n",
        "scalable/apps/plain.icon": b"[Icon Data]\n", "scalable/apps/plain.svg": b"s",
        "scalable/a/b/c/deep.svg": b"s", "scalable/a/early.png": b"p", "scalable/a/z.png": b"p",
        "32x32/only-icons/x.icon": ICON_FILE,
        "32x32/mixed/folder.png": b"p", "32x32/mixed/folder.icon": b"[Icon Data]\nDisplayName[de]=Ordner\n"
                                                                    b"AttachPoints=\n",
        "32x32/mixed/bad.icon": b"[Icon Data]\nnot a key line\n", "32x32/mixed/bad.png": b"p",
        "32x32/mixed/three.icon": b"[Icon Data]\nEmbeddedTextRectangle=1,2,3\nDisplayName=three\n",
        "32x32/mixed/three.png": b"p",
        "32x32/mixed/trail.icon": b"[Icon Data]\nEmbeddedTextRectangle=1,2,3,4,\n", "32x32/mixed/trail.svg": b"s",
        "32x32/mixed/lax.icon": b"# c\n[Other]\nx=1\n[Icon Data]\nEmbeddedTextRectangle = 5 x, 6,7 ,+8\n",
        "32x32/mixed/lax.png": b"p",
        "32x32/mixed/bignum.icon": b"[Icon Data]\nEmbeddedTextRectangle=1,2,3,99999999999\n",
        "32x32/mixed/bignum.png": b"p",
    }
    pair.check(["gtk-update-icon-cache /usr/share/icons/Hand; echo $?",
                "gtk-update-icon-cache --validate /usr/share/icons/Hand; echo $?"], setup=theme("Hand", files))
    cache_times_follow(pair, f"{ICONS}/Hand")


def test_symbolic_links(pair):
    # linked icons and .icon files (one IconData shared by the names linking to it), a linked
    # directory, dangling links
    files = {
        "16x16/apps/real.png": b"p", "16x16/apps/real.icon": ICON_FILE,
        "16x16/apps/alias.png": "real.png", "16x16/apps/alias.icon": "real.icon",
        "16x16/apps/far.icon": "../../32x32/apps/./real.icon", "16x16/apps/far.svg": b"s",
        "32x32/apps/real.icon": b"[Icon Data]\nDisplayName=Far\nDisplayName[de]=Weit\n",
        "32x32/apps/real.png": b"p", "32x32/apps/abs.icon": "/usr/share/icons/Links/16x16/apps/real.icon",
        "32x32/apps/abs.png": b"p", "48x48": "16x16", "16x16/apps/dangling.png": "nowhere.png",
    }
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/Links; echo $?"], setup=theme("Links", files))


def test_many_icons_hash_table_growth(pair):
    # thousands of names over several directories: GHashTable resizes and a large prime table
    files = {}
    for d, n in (("16x16/apps", 1500), ("22x22/status", 700), ("scalable/apps", 2600)):
        for i in range(n):
            files[f"{d}/icon-{i * 7919 % 100003:x}-{d[:2]}.{'svg' if d.startswith('s') else 'png'}"] = b"i"
    pair.check(["gtk-update-icon-cache -q /usr/share/icons/Many; echo $?"], setup=theme("Many", files))


def test_invalid_generated_cache_and_relative_paths(pair):
    # a name the validator refuses (a space): the message, status 1, the temporary file left
    pair.check(["gtk-update-icon-cache /usr/share/icons/Space; echo $?",
                "gtk-update-icon-cache -q /usr/share/icons/Latin; echo $?",
                "cd /usr/share/icons && gtk-update-icon-cache -f Rel/ && gtk-update-icon-cache -v ./Rel//; echo $?",
                # an empty ICONPATH: the index and the files are looked up in the working
                # directory, the scan of "" finds nothing, so the cache there is removed
                "cd /usr/share/icons/Rel && cp icon-theme.cache /tmp/c && gtk-update-icon-cache ''; echo $?",
                "cd /usr/share/icons/Rel && gtk-update-icon-cache -f ''; echo $?"],
               setup=setups(theme("Space", {"16x16/apps/my icon.png": b"p", "16x16/apps/ok.png": b"p"}),
                            theme("Latin", {"16x16/apps/caf\u00e9.svg": b"s"}),
                            theme("Rel", {"16x16/apps/ok.png": b"p", "24x24/apps/ok.svg": b"s"})))


def test_validate_source_and_option_forms(pair):
    setup = setups(theme("V", {"16x16/apps/a.png": b"p", "16x16/apps/a.icon": ICON_FILE, "x/b.svg": b"s"}),
                   theme("Garbage", {"icon-theme.cache": b"\x00\x01\x00\x00\x00\x00\x00\x0c\xff\xff\xff\xff"}),
                   theme("Empty", {"icon-theme.cache": b""}))
    pair.check(["gtk-update-icon-cache -fq /usr/share/icons/V --source my_cache; echo $?",
                "gtk-update-icon-cache -c name -f /usr/share/icons/V extra operands; echo $?",
                "gtk-update-icon-cache --quiet --force --source=eq /usr/share/icons/Svg -c -; echo $?",
                "gtk-update-icon-cache -v /usr/share/icons/V; echo $?",
                "gtk-update-icon-cache -v /usr/share/icons/Garbage; echo $?",
                "gtk-update-icon-cache -qv /usr/share/icons/Garbage; echo $?",
                "gtk-update-icon-cache --validate /usr/share/icons/Empty; echo $?",
                "gtk-update-icon-cache --validate /usr/share/icons/none; echo $?",
                "gtk-update-icon-cache -f --index-only --include-image-data /usr/share/icons/Svg; echo $?",
                "gtk-update-icon-cache -f --include-image-data -i /usr/share/icons/V; echo $?"],
               setup=setups(setup, theme("Svg", {"s/a.svg": b"s", "s/b.icon": ICON_FILE, "s/b.svg": b"s"})))


def _model(root: str, argv: list[str], env: dict | None = None) -> Invocation:
    inv = Invocation(argv=argv, fs=HostDirFS(root, writable=True), env=dict(env or ENV), models=MODELS)
    MODELS["gtk-update-icon-cache"](inv)
    return inv


def test_deferrals_leave_the_tree_unchanged(pair):
    pair.reset(theme("D", {"16x16/apps/a.png": b"p", "16x16/apps/q.icon": b"[Icon Data]\nDisplayName=a\\sb\n",
                           "16x16/apps/q.svg": b"s", "l/loop": "..", "l/x.svg": b"s"}))
    before = pair.facts(pair.model)
    for argv, reason in ((["gtk-update-icon-cache", "--include-image-data", "-f", "/usr/share/icons/D"], "gdk-pixbuf"),
                         (["gtk-update-icon-cache", "-f", "/usr/share/icons/D"], "escapes"),
                         (["gtk-update-icon-cache", "--help"], "help"),
                         (["gtk-update-icon-cache", "-f", "--", "/usr/share/icons/D"], "'--'"),
                         (["gtk-update-icon-cache", "-f"], "ICONPATH")):
        with pytest.raises(Defer, match=reason):
            _model(pair.model, argv)
        assert pair.facts(pair.model) == before
    write(pair.model, f"{ICONS}/D/16x16/apps/q.icon", b"[Icon Data]\n")
    with pytest.raises(Defer, match="loops"):
        _model(pair.model, ["gtk-update-icon-cache", "-f", "/usr/share/icons/D"])
    os.unlink(os.path.join(pair.model, ICONS, "D/l/loop"))
    before = pair.facts(pair.model)
    # a message in a locale gettext may translate: deferred before anything is written; the
    # same run with -q has nothing to print and is modelled
    with pytest.raises(Defer, match="locale"):
        _model(pair.model, ["gtk-update-icon-cache", "-f", "/usr/share/icons/D"], {**ENV, "LC_ALL": "de_DE.UTF-8"})
    assert pair.facts(pair.model) == before
    inv = _model(pair.model, ["gtk-update-icon-cache", "-qf", "/usr/share/icons/D"], {**ENV, "LC_ALL": "de_DE.UTF-8"})
    assert not inv.stderr and os.path.exists(os.path.join(pair.model, ICONS, "D/icon-theme.cache"))


def test_format_helpers():
    # icon_name_hash reads signed chars; the bucket count is g_spaced_primes_closest (n / 3)
    assert fmt.icon_name_hash(b"a") == 97 and fmt.icon_name_hash(b"ab") == 97 * 31 + 98
    assert fmt.icon_name_hash(b"\xff") == 0xFFFFFFFF
    assert [fmt.spaced_primes_closest(n) for n in (0, 10, 11, 19, 13845163, 10**9)] == [11, 11, 19, 37, 13845163,
                                                                                         13845163]
    assert not fmt.validate(b"") and not fmt.validate(b"\x00\x02\x00\x00")


def random_theme(seed: int) -> dict[str, bytes | str]:
    """A made-up theme from ``seed``: names repeated across directories, ``.icon`` files whose
    display names and languages repeat each other, icon names and directory names (the
    string pool's cases), links between them."""
    rnd = random.Random(seed)
    words = ["apps", "folder", "C", "de", "x", "edit-copy", "16x16/apps", "go-up-symbolic", "ab", "abc",
             "emblem", "scalable", "network-wired", "A", "zz"]
    dirs = ["16x16/apps", "16x16/status", "scalable/apps", "scalable/apps/sub", "32x32", "symbolic/up"]
    files: dict[str, bytes | str] = {}
    for _ in range(rnd.randrange(5, 60)):
        d = rnd.choice(dirs)
        name = rnd.choice(words + [f"n{rnd.randrange(50)}"]).replace("/", "-")
        ext = rnd.choice([".png", ".svg", ".xpm", ".icon", ".symbolic.png", ".txt"])
        if ext == ".icon":
            lines = ["[Icon Data]"]
            if rnd.random() < 0.5:
                lines.append("EmbeddedTextRectangle=" + ",".join(str(rnd.randrange(-5, 70000)) for _ in range(4)))
            if rnd.random() < 0.5:
                pts = "|".join(f"{rnd.randrange(100)},{rnd.randrange(100)}" for _ in range(rnd.randrange(1, 4)))
                lines.append("AttachPoints=" + pts)
            langs = rnd.sample(["", "de", "fr", "sv", "C"], rnd.randrange(0, 4))
            for lang in langs:
                key = "DisplayName" + (f"[{lang}]" if lang else "")
                lines.append(f"{key}={rnd.choice(words)}")
            files[f"{d}/{name}{ext}"] = ("\n".join(lines) + "\n").encode()
        else:
            files[f"{d}/{name}{ext}"] = b"i"
    names = sorted(files)
    for _ in range(rnd.randrange(0, 4)):  # links to files of other directories
        target = rnd.choice(names)
        d = rnd.choice(dirs)
        link = f"{d}/l{rnd.randrange(9)}{target[target.rfind('.'):]}"
        if link not in files:
            files[link] = "/usr/share/icons/R/" + target
    return files


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5, 6])
def test_random_themes(pair, seed):
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/R; echo $?"], setup=theme("R", random_theme(seed)))


def test_stale_temporary_file_and_cache_in_the_way(pair):
    # a stale temporary file is removed and the open retried; a non-empty directory in its
    # place cannot be (File exists); a directory where the cache goes fails the rename
    icons = {"16x16/apps/a.png": b"p"}
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/T1; echo $?",
                "gtk-update-icon-cache -f /usr/share/icons/T2; echo $?",
                "gtk-update-icon-cache -f /usr/share/icons/T3; echo $?",
                "gtk-update-icon-cache -f /usr/share/icons/T4; echo $?"],
               setup=setups(theme("T1", {**icons, ".icon-theme.cache": b"stale"}),
                            theme("T2", {**icons, ".icon-theme.cache/x": b"full"}),
                            theme("T3", {**icons, "icon-theme.cache/x": b"full"}),
                            theme("T4", {**icons, ".icon-theme.cache": "icon-theme.cache"})))


def test_icon_file_whitespace_and_numbers(pair):
    # GKeyFile keeps a value's trailing blanks and drops the key's; strtol's and atoi's
    # readings of signs, blanks and junk
    files = {
        "a/one.icon": b"  [Icon Data]  \n\n  # comment\nDisplayName  =  Spaced  \n"
                      b"DisplayName[de]=\tTab\t\nAttachPoints= 1 , -2 |x,3|4,5junk\n",
        "a/one.png": b"p",
        "a/two.icon": b"[Icon Data]\nEmbeddedTextRectangle=-1,+2, 3 ,4\t\nDisplayName[de]=Tab\t\n",
        "a/two.svg": b"s",
        "a/three.icon": b"[Icon Data]\nEmbeddedTextRectangle=1,2,3,4x\nDisplayName=Spaced  \n",
        "a/three.svg": b"s",
        "a/four.icon": b"[Icon Data]\nEmbeddedTextRectangle= , ,1,2\n", "a/four.svg": b"s",
        "a/five.icon": b"[Icon Data]\nEmbeddedTextRectangle=2147483648,0,0,0\n", "a/five.svg": b"s",
    }
    pair.check(["gtk-update-icon-cache -f /usr/share/icons/W; echo $?"], setup=theme("W", files))


def test_validate_pixel_data_is_deferred(pair):
    # a cache the real program made with --include-image-data: checking its pixel data
    # decodes it with gdk-pixbuf, so --validate on it defers (the tree is unchanged)
    src = os.path.join(pair.model, ICONS, "Adwaita/16x16/legacy/edit-copy.png")
    if not os.path.exists(src):
        src = next(os.path.join(d, n) for d, _, ns in os.walk(os.path.join(pair.model, ICONS, "Adwaita"))
                   for n in ns if n.endswith(".png"))
    png = open(src, "rb").read()
    pair.reset(theme("Pix", {"16x16/apps/a.png": png, "16x16/apps/b.svg": b"s"}))
    subprocess.run(["chroot", pair.model, "gtk-update-icon-cache", "-q", "--include-image-data",
                    "/usr/share/icons/Pix"], check=True, env=ENV)
    before = pair.facts(pair.model)
    with pytest.raises(Defer, match="pixel data"):
        _model(pair.model, ["gtk-update-icon-cache", "--validate", "/usr/share/icons/Pix"])
    assert pair.facts(pair.model) == before
