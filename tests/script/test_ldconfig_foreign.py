"""The ldconfig model on foreign-architecture images, against the image's own ldconfig.

For each architecture a bookworm minbase tree of that architecture is built by mmdebstrap
(``--arch``); the real ldconfig runs in a chroot of one copy under qemu-user (binfmt_misc),
the model on another copy on this amd64 host. Both copies get the same damage (cache removed,
soname links missing, stale or wrong, an extra directory with odd files); afterwards the
caches must be byte-identical (flags such as FLAG_AARCH64_LIB64 or FLAG_ARM_LIBHF, the
machine's byte order, its multiarch directories), the soname links the same, the complaints
the same, and ``ldconfig -p`` must print what the real one prints.

arm64 and armhf run in the normal suite; i386, ppc64el and s390x (big-endian) in the exhaustive
tier (``pytest -m exhaustive``: each builds a tree under emulation, minutes on a fresh machine).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from cmdharness import library_links
from debian_tree import bookworm_tree, copy_tree
from nuwa.deb.arch import MACHINES, arch_of_elf, native_architecture
from nuwa.script.commands import default_models
from nuwa.script.commands.caches.ldcache import FLAGS_ENDIAN_BIG, FLAGS_ENDIAN_LITTLE, decode_cache
from nuwa.script.context import Invocation

MODELS = default_models()
ARCHS = [
    "arm64",
    "armhf",
    pytest.param("i386", marks=[pytest.mark.slow, pytest.mark.exhaustive]),
    pytest.param("ppc64el", marks=[pytest.mark.slow, pytest.mark.exhaustive]),
    pytest.param("s390x", marks=[pytest.mark.slow, pytest.mark.exhaustive]),
]
#: the library flag every 64-bit/hard-float library of the architecture must carry (dl-cache.h)
ABI_FLAG = {"arm64": 0x0A03, "armhf": 0x0903, "ppc64el": 0x0503, "s390x": 0x0403}


def _hostdir():
    return pytest.importorskip("nuwa.fs.hostdir", reason="HostDirFS backend not available")




def _damage(root: str, libdir: str) -> None:
    """The same set of changes on both copies."""
    lib = os.path.join(root, libdir)
    zlib = sorted(n for n in os.listdir(lib) if n.startswith("libz.so.1."))[0]
    acl = sorted(n for n in os.listdir(lib) if n.startswith("libacl.so.1."))[0]
    os.unlink(os.path.join(root, "etc/ld.so.cache"))
    os.unlink(os.path.join(lib, "libz.so.1"))  # missing soname link: ldconfig recreates it
    os.symlink("libgone.so.3.1", os.path.join(lib, "libgone.so.3"))  # stale link: removed
    os.unlink(os.path.join(lib, "libacl.so.1"))
    os.symlink(zlib, os.path.join(lib, "libacl.so.1"))  # wrong target: fixed
    assert os.path.exists(os.path.join(lib, acl))
    extra = os.path.join(root, "opt/extra")
    os.makedirs(extra)
    shutil.copy2(os.path.join(lib, zlib), os.path.join(extra, zlib))
    with open(os.path.join(extra, "libjunk.so"), "w") as f:
        f.write("not an ELF file at all, but long enough to be looked at by ldconfig..........\n")
    open(os.path.join(extra, "libempty.so.1"), "w").close()
    with open(os.path.join(root, "etc/ld.so.conf.d/zz-extra.conf"), "w") as f:
        f.write("# extra\n/opt/extra/\n/nonexistent\n")


@pytest.mark.judge
@pytest.mark.parametrize("arch", ARCHS)
def test_foreign_ldconfig_matches_the_images_own_ldconfig_byte_for_byte(tmp_path, arch):
    base = bookworm_tree(arch=arch)
    libdir = "usr/lib/" + MACHINES[arch].multiarch
    real, sim = copy_tree(base, str(tmp_path / "real")), copy_tree(base, str(tmp_path / "sim"))
    original = open(os.path.join(base, "etc/ld.so.cache"), "rb").read()
    for root in (real, sim):
        _damage(root, libdir)
    r = subprocess.run(["chroot", real, "/sbin/ldconfig"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr

    fs = _hostdir().HostDirFS(sim, writable=True)
    # the machine comes from the image: its dpkg database and its programs' ELF headers agree
    assert native_architecture(fs) == arch
    with open(os.path.join(sim, "bin/dash"), "rb") as f:
        assert arch_of_elf(f.read(64)) == arch
    inv = Invocation(argv=["/sbin/ldconfig"], fs=fs, models=MODELS)
    status = MODELS["ldconfig"](inv)
    assert status == 0, inv.stderr.decode()

    want = open(os.path.join(real, "etc/ld.so.cache"), "rb").read()
    got = open(os.path.join(sim, "etc/ld.so.cache"), "rb").read()
    entries = decode_cache(got)[0]
    assert entries == decode_cache(want)[0]
    assert got == want
    # the same bytes mmdebstrap's own ldconfig run left in the pristine tree (no damage there,
    # but the extra directory adds entries: compare the machine-dependent parts only)
    assert got[28] == original[28] == (FLAGS_ENDIAN_BIG if arch == "s390x" else FLAGS_ENDIAN_LITTLE)
    if arch in ABI_FLAG:
        libc = [e for e in entries if e.soname == "libc.so.6"]
        assert libc and libc[0].flags == ABI_FLAG[arch] and libc[0].path == f"/lib/{MACHINES[arch].multiarch}/libc.so.6"
    assert library_links(sim, libdir) == library_links(real, libdir)
    assert inv.stderr.decode() == r.stderr

    p = MODELS["ldconfig"](inv2 := Invocation(argv=["ldconfig", "-p"], fs=fs, models=MODELS))
    real_p = subprocess.run(["chroot", real, "/sbin/ldconfig", "-p"], capture_output=True, text=True)
    assert p == 0 and inv2.stdout.decode() == real_p.stdout
