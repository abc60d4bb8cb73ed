"""The ldconfig model against the real ldconfig of a bookworm tree (run in a chroot).

Both sides start from identical copies of the same tree with the same damage done (cache
removed, soname links broken or stale, extra directories and odd files); afterwards the cache
files must be byte-identical and the soname links the same.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cmdharness import library_links
from debian_tree import bookworm_tree, copy_tree
from nuwa.script.commands.caches.ldcache import decode_cache, encode_cache, libcmp, sorted_entries
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation

MODELS = default_models()


LIBDIR = "usr/lib/x86_64-linux-gnu"


def _hostdir():
    return pytest.importorskip("nuwa.fs.hostdir", reason="HostDirFS backend not available")




def _damage(root: str) -> None:
    """The same set of changes on both copies."""
    lib = os.path.join(root, LIBDIR)
    os.unlink(os.path.join(root, "etc/ld.so.cache"))
    os.unlink(os.path.join(lib, "libz.so.1"))  # missing soname link: ldconfig recreates it
    os.symlink("libgone.so.3.1", os.path.join(lib, "libgone.so.3"))  # stale link: removed
    os.unlink(os.path.join(lib, "libacl.so.1"))
    os.symlink("libz.so.1.2.13", os.path.join(lib, "libacl.so.1"))  # wrong target: fixed
    extra = os.path.join(root, "opt/extra")
    os.makedirs(extra)
    shutil.copy2(os.path.join(lib, "libz.so.1.2.13"), os.path.join(extra, "libz.so.1.2.13"))
    with open(os.path.join(extra, "libjunk.so"), "w") as f:
        f.write("not an ELF file at all, but long enough to be looked at by ldconfig..........\n")
    with open(os.path.join(extra, "libscript.so"), "w") as f:
        f.write("/* GNU ld script */\nGROUP ( libz.so.1 )\n" + " " * 64)
    open(os.path.join(extra, "libempty.so.1"), "w").close()
    with open(os.path.join(root, "etc/ld.so.conf.d/zz-extra.conf"), "w") as f:
        f.write("# extra\n/opt/extra/\n/nonexistent\n")


@pytest.mark.judge
def test_ldconfig_matches_real_ldconfig_byte_for_byte(tmp_path):
    base = bookworm_tree()
    real, sim = copy_tree(base, str(tmp_path / "real")), copy_tree(base, str(tmp_path / "sim"))
    for root in (real, sim):
        _damage(root)
    r = subprocess.run(["chroot", real, "/sbin/ldconfig"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    fs = _hostdir().HostDirFS(sim, writable=True)
    inv = Invocation(argv=["/sbin/ldconfig"], fs=fs, models=MODELS)
    status = MODELS["ldconfig"](inv)
    assert status == 0, inv.stderr.decode()

    want = open(os.path.join(real, "etc/ld.so.cache"), "rb").read()
    got = open(os.path.join(sim, "etc/ld.so.cache"), "rb").read()
    assert decode_cache(got)[0] == decode_cache(want)[0]
    assert got == want
    assert oct(os.stat(os.path.join(sim, "etc/ld.so.cache")).st_mode & 0o7777) == "0o644"
    assert library_links(sim, LIBDIR) == library_links(real, LIBDIR)
    assert not os.path.lexists(os.path.join(sim, "etc/ld.so.cache~"))
    # the same complaints about the same files
    assert inv.stderr.decode() == r.stderr

    # `ldconfig -p` prints what the real one prints for the cache
    p = MODELS["ldconfig"](inv2 := Invocation(argv=["ldconfig", "-p"], fs=fs, models=MODELS))
    real_p = subprocess.run(["chroot", real, "/sbin/ldconfig", "-p"], capture_output=True, text=True)
    assert p == 0 and inv2.stdout.decode() == real_p.stdout


def test_cache_encoding_round_trips_and_sorts_like_glibc():
    from nuwa.script.commands.caches.ldcache import CacheEntry

    names = ["libz.so.1", "libz.so.10", "libz.so.2", "libc.so.6", "ld-linux-x86-64.so.2", "libz3.so.4", "libzz.so"]
    ents = [CacheEntry(n, "/lib/x/" + n, 0x303) for n in names]
    ordered = sorted_entries(ents)
    # descending by _dl_cache_libcmp, numbers compared as numbers
    for a, b in zip(ordered, ordered[1:]):
        assert libcmp(a.soname, b.soname) >= 0
    assert [e.soname for e in ordered][:3] == ["libz3.so.4", "libzz.so", "libz.so.10"]  # a digit sorts after a letter
    data = encode_cache(ordered, "ldconfig (test) stable release version 0")
    back, gen = decode_cache(data)
    assert back == ordered and gen == "ldconfig (test) stable release version 0"
    assert data.startswith(b"glibc-ld.so.cache1.1") and len(data) > 48 + 24 * len(names)


def test_libcmp_numeric_segments():
    assert libcmp("libfoo.so.10", "libfoo.so.9") > 0
    assert libcmp("libfoo.so.1.2", "libfoo.so.1.2") == 0
    assert libcmp("libfoo.so", "libfoo.so.1") < 0
    assert libcmp("lib1", "liba") > 0  # a digit sorts after a letter


def _initramfs_tree(root: str) -> str:
    """What mkinitramfs has built when it runs ``ldconfig -r "$DESTDIR"``: a usr-merged tree
    with a few libraries (some without their soname links, one through an absolute link that
    must resolve inside the tree) and the system's ld.so.conf files."""
    dest = os.path.join(root, "var/tmp/mkinitramfs_test")
    lib = os.path.join(dest, "usr", LIBDIR)
    os.makedirs(lib)
    os.makedirs(os.path.join(dest, "usr/lib64"))
    os.makedirs(os.path.join(dest, "etc"))
    for d in ("bin", "lib", "lib64", "sbin"):
        os.symlink(f"usr/{d}", os.path.join(dest, d))
    for n in ("libc.so.6", "libkmod.so.2.4.0", "libzstd.so.1.5.4", "libcrypto.so.3", "liblzma.so.5.4.1"):
        src = os.path.join(root, LIBDIR, n)
        if os.path.exists(src):
            shutil.copy2(src, os.path.join(lib, n))
    os.symlink("/usr/lib/x86_64-linux-gnu/libc.so.6", os.path.join(lib, "libc-abs.so.6"))
    for n in os.listdir(os.path.join(root, "etc")):
        if n.startswith("ld.so.conf"):
            subprocess.run(["cp", "-pPr", os.path.join(root, "etc", n), os.path.join(dest, "etc")], check=True)
    return "/var/tmp/mkinitramfs_test"


@pytest.mark.judge
def test_ldconfig_r_works_inside_the_named_tree_like_the_real_chroot(tmp_path):
    base = bookworm_tree()
    real, sim = link_tree_full(base, tmp_path / "real"), link_tree_full(base, tmp_path / "sim")
    dest = _initramfs_tree(real)
    _initramfs_tree(sim)
    r = subprocess.run(["chroot", real, "/sbin/ldconfig", "-r", dest], capture_output=True, text=True)
    inv = Invocation(argv=["ldconfig", "-r", dest], fs=_hostdir().HostDirFS(sim, writable=True), models=MODELS)
    assert (MODELS["ldconfig"](inv), inv.stderr.decode()) == (r.returncode, r.stderr)
    assert r.returncode == 0
    for sub in ("etc/ld.so.cache", ):
        assert open(sim + dest + "/" + sub, "rb").read() == open(real + dest + "/" + sub, "rb").read()
    assert library_links(sim + dest + "/usr", LIBDIR) == library_links(real + dest + "/usr", LIBDIR)
    assert not os.path.exists(os.path.join(sim, "etc/ld.so.cache~"))
    # a tree that does not exist: the real ldconfig fails writing its cache there; deferred
    from nuwa.script.context import Defer
    with pytest.raises(Defer):
        MODELS["ldconfig"](Invocation(argv=["ldconfig", "-r", "/nonexistent"],
                                      fs=_hostdir().HostDirFS(sim, writable=True), models=MODELS))


def link_tree_full(base: str, dst) -> str:
    """A copy the test may change in place (ldconfig rewrites links and writes the cache)."""
    return copy_tree(base, str(dst))


def test_ldconfig_refuses_foreign_roots_and_formats_by_deferring(tmp_path):
    from nuwa.script.context import Defer

    fs = _hostdir().HostDirFS(str(tmp_path), writable=True)
    for argv in (["ldconfig", "-c", "old"], ["ldconfig", "--bogus"]):
        with pytest.raises(Defer):
            MODELS["ldconfig"](Invocation(argv=argv, fs=fs, models=MODELS))
    # no ldconfig binary in an empty tree: the cache cannot be written exactly, so defer
    with pytest.raises(Defer):
        MODELS["ldconfig"](Invocation(argv=["ldconfig"], fs=fs, models=MODELS))
