"""The models that answer "what machine is this?" answer for the image, on foreign images.

Trees: bookworm minbase for arm64 and armhf (mmdebstrap ``--arch``; ``debian_tree``). Judges:
the image's own ``uname -m``, ``arch`` and ``dpkg`` run in a chroot under qemu-user (qemu-user
reports the emulated CPU: ``aarch64``, ``armv7l``), and the host's ``dpkg-architecture -a ARCH``
(dpkg-dev's table, the same one the image's would use) for ``dpkg-architecture``. Plus: the
machine is decided from the ELF headers when the dpkg database does not say it, and
``nuwa info`` reports the guest's architecture in text and JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from debian_tree import bookworm_tree, link_tree
from nuwa.deb.arch import MACHINES, arch_of_elf, native_architecture
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.dpkg.architecture import debarch_is
from nuwa.script.context import Defer, Invocation

MODELS = default_models()
ARCHS = ["arm64", "armhf"]
HOST_VARS = ["DEB_HOST_ARCH", "DEB_HOST_ARCH_ABI", "DEB_HOST_ARCH_BITS", "DEB_HOST_ARCH_CPU", "DEB_HOST_ARCH_ENDIAN",
             "DEB_HOST_ARCH_LIBC", "DEB_HOST_ARCH_OS", "DEB_HOST_GNU_CPU", "DEB_HOST_GNU_SYSTEM", "DEB_HOST_GNU_TYPE",
             "DEB_HOST_MULTIARCH"]


def _model(fs, *argv: str, env: dict | None = None) -> tuple[int, str, str]:
    inv = Invocation(argv=list(argv), fs=fs, models=MODELS, env=env or {})
    st = MODELS[argv[0]](inv)
    return st, inv.stdout.decode(), inv.stderr.decode()


def _chroot(root: str, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(["chroot", root, *argv], capture_output=True, text=True,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})


@pytest.mark.judge
@pytest.mark.parametrize("arch", ARCHS)
def test_machine_models_answer_like_the_images_own_programs(arch):
    tree = bookworm_tree(arch=arch)
    fs = HostDirFS(tree)
    for argv in (["uname", "-m"], ["arch"], ["dpkg", "--print-architecture"],
                 ["dpkg", "--print-foreign-architectures"], ["uname", "-s", "-m"]):
        real = _chroot(tree, *argv)
        assert real.returncode == 0, real.stderr
        assert _model(fs, *argv) == (0, real.stdout, ""), argv
    real = _chroot(tree, "arch", "extra")
    assert _model(fs, "arch", "extra") == (real.returncode, "", real.stderr.replace("/usr/bin/arch", "arch"))


@pytest.mark.parametrize("arch", ARCHS + ["i386", "ppc64el", "s390x", "amd64"])
def test_dpkg_architecture_matches_dpkg_dev_for_the_image(tmp_path, arch):
    real_tool = shutil.which("dpkg-architecture")
    if real_tool is None:
        pytest.skip("dpkg-dev's dpkg-architecture is not installed on this host")
    root = tmp_path / "root"
    (root / "var/lib/dpkg").mkdir(parents=True)
    (root / "var/lib/dpkg/status").write_text(
        f"Package: dpkg\nStatus: install ok installed\nArchitecture: {arch}\nVersion: 1.21.22\n\n")
    fs = HostDirFS(str(root))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEB_")}
    for var in HOST_VARS:
        want = subprocess.run([real_tool, "-a", arch, "-q", var], capture_output=True, text=True, env=env)
        assert _model(fs, "dpkg-architecture", "-q", var) == (0, want.stdout, ""), var
    listing = subprocess.run([real_tool, "-a", arch, "-l"], capture_output=True, text=True, env=env).stdout
    host_lines = [ln for ln in listing.splitlines() if ln.startswith("DEB_HOST_")]
    st, out, _ = _model(fs, "dpkg-architecture", "-l")
    assert st == 0 and [ln for ln in out.splitlines() if ln.startswith("DEB_HOST_")] == host_lines
    assert [ln.split("=")[0] for ln in out.splitlines()] == [ln.split("=")[0] for ln in listing.splitlines()]
    for wildcard in ("any", "linux-any", f"any-{MACHINES[arch].cpu}", "any-amd64", "arm64", "armhf", "any-i386"):
        want = subprocess.run([real_tool, "-a", arch, "-i", wildcard], capture_output=True, env=env).returncode
        assert _model(fs, "dpkg-architecture", "-i", wildcard)[0] == want, wildcard
        assert debarch_is(arch, wildcard) == (want == 0)
    for other in ("arm64", "amd64"):
        want = subprocess.run([real_tool, "-a", arch, "-e", other], capture_output=True, env=env).returncode
        assert _model(fs, "dpkg-architecture", "-e", other)[0] == want
    # the environment wins unless -f, as upstream
    assert _model(fs, "dpkg-architecture", "-q", "DEB_HOST_ARCH", env={"DEB_HOST_ARCH": "x"})[1] == "x\n"
    assert _model(fs, "dpkg-architecture", "-f", "-q", "DEB_HOST_ARCH", env={"DEB_HOST_ARCH": "x"})[1] == f"{arch}\n"
    st, _, err = _model(fs, "dpkg-architecture", "-q", "FOO")
    assert st == 25 and err == "dpkg-architecture: error: FOO is not a supported variable name\n"
    other = "arm64" if arch != "arm64" else "amd64"
    with pytest.raises(Defer):
        _model(fs, "dpkg-architecture", "-a", other, "-q", "DEB_HOST_ARCH")


@pytest.mark.parametrize("arch", ARCHS)
def test_machine_from_elf_headers_when_the_database_does_not_say(tmp_path, arch):
    tree = bookworm_tree(arch=arch)
    copy = link_tree(tree, str(tmp_path / "t"))
    # a damaged database: no dpkg stanza, no arch file -> the programs' ELF headers decide
    status = os.path.join(copy, "var/lib/dpkg/status")
    os.unlink(status)
    with open(status, "w") as f:
        f.write("")
    if os.path.exists(os.path.join(copy, "var/lib/dpkg/arch")):
        os.unlink(os.path.join(copy, "var/lib/dpkg/arch"))
    fs = HostDirFS(copy)
    assert native_architecture(fs) == arch
    assert _model(fs, "uname", "-m")[1] == _chroot(tree, "uname", "-m").stdout
    with open(os.path.join(tree, "usr/bin/dpkg"), "rb") as f:
        assert arch_of_elf(f.read(64)) == arch
    assert arch_of_elf(b"\x7fELF" + bytes(60)) is None and arch_of_elf(b"#!/bin/sh\n") is None


@pytest.mark.judge
def test_nuwa_info_shows_the_guests_architecture(tmp_path):
    tree = bookworm_tree(arch="arm64")
    raw = str(tmp_path / "arm64.raw")
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", tree, raw, "600M"], check=True)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    r = subprocess.run([sys.executable, "-m", "nuwa", "info", raw, "--json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["root"]["architecture"] == {
        "native": "arm64", "foreign": [], "machine": "aarch64", "multiarch": "aarch64-linux-gnu"}
    r = subprocess.run([sys.executable, "-m", "nuwa", "info", raw], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "  architecture: arm64 (aarch64)\n" in r.stdout
