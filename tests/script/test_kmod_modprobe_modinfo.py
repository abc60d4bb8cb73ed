"""The modprobe and modinfo models against the real programs (kmod 30) in a chroot of the
kernel tree: stdout, stderr and exit status equal, for modules chosen from the tree's
modules.order (every n-th one, not a list of expected results), plus aliases, symbols,
built-in modules, modprobe.d options/softdeps/install lines, compressed modules and errors.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree, kernel_versions
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Drop, Invocation

MODELS = default_models()
pytestmark = [pytest.mark.judge, pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    base = kernel_tree()
    ver = kernel_versions(base)[-1]
    root = link_tree(base, str(tmp_path_factory.mktemp("kmod") / "tree"))
    d = f"{root}/lib/modules/{ver}"
    os.makedirs(f"{root}/etc/modprobe.d", exist_ok=True)
    with open(f"{root}/etc/modprobe.d/nuwa-test.conf", "w") as f:
        f.write("options bonding max_bonds=3 miimon=100\noptions virtio_blk queue_depth=64\n"
                "softdep virtio_net pre: crc32c post: tls\ninstall dummy /bin/true\n"
                "alias nuwa-alias virtio_scsi\nblacklist virtio_scsi\nfrobnicate x\n")
    # a few modules recompressed: modprobe prints their new paths after depmod
    order = [ln.strip() for ln in open(f"{d}/modules.order") if ln.strip()]
    for rel in order[::90]:
        if os.path.exists(f"{d}/{rel}"):
            subprocess.run(["zstd", "-q", "-f", "--rm", f"{d}/{rel}"], check=True)
    subprocess.run(["chroot", root, "depmod", ver], check=True)
    return root, ver


def _names(root: str, ver: str, step: int) -> list[str]:
    order = [ln.strip() for ln in open(f"{root}/lib/modules/{ver}/modules.order") if ln.strip()]
    return [os.path.basename(p).split(".")[0] for p in order[::step]]


def _compare(root: str, argv: list[str]) -> tuple[int, bytes]:
    r = subprocess.run(["chroot", root, *argv], capture_output=True)
    inv = Invocation(argv=argv, fs=HostDirFS(root), models=MODELS)
    status = MODELS[argv[0]](inv)
    assert inv.stderr.decode() == r.stderr.decode()
    assert inv.stdout.decode() == r.stdout.decode()
    assert status == r.returncode
    return status, r.stdout


EXTRA = ["ext4", "crc32c", "fb", "uhci_hcd", "ohci-hcd", "symbol:crc32c_le", "fs-ext4", "nuwa-alias",
         "virtio_net", "bonding", "dummy", "virtio:d00000001v00001AF4", "nonexist"]


@pytest.mark.parametrize("ignore", [True, False])
def test_modprobe_show_depends_as_mkinitramfs_calls_it(tree, ignore):
    root, ver = tree
    argv = ["modprobe", "--all", f"--set-version={ver}", "--quiet", "--show-depends",
            *_names(root, ver, 9), *EXTRA]
    if ignore:
        argv.insert(3, "--ignore-install")
    status, out = _compare(root, argv)
    assert status == 1  # "nonexist" is missing
    assert b".ko.zst " in out and b"builtin ext4\n" in out and b"max_bonds=3 miimon=100" in out


@pytest.mark.parametrize("args", [["virtio_blk"], ["-D", "nonexist"], ["bonding", "mode=1", "arp_ip_target=a b"],
                                  ["-R", "nuwa-alias"], ["-a", "-b", "nuwa-alias", "virtio_scsi"]])
def test_modprobe_single_module_forms(tree, args):
    root, ver = tree
    argv = ["modprobe", "-S", ver, *(args if args[0] == "-R" else ["-D", *args])]
    _compare(root, argv)


def test_modprobe_loading_is_dropped_and_uname_deferred(tree):
    root, ver = tree
    fs = HostDirFS(root)
    with pytest.raises(Drop):
        MODELS["modprobe"](Invocation(argv=["modprobe", "-S", ver, "ext4"], fs=fs, models=MODELS))
    with pytest.raises(Defer, match="uname"):
        MODELS["modprobe"](Invocation(argv=["modprobe", "-D", "ext4"], fs=fs, models=MODELS))


@pytest.mark.parametrize("opts", [[], ["-F", "firmware"], ["-0", "-F", "alias"], ["-p"], ["-F", "parm"],
                                  ["-n"], ["-F", "signer", "-F", "sig_key"], ["-F", "name"]])
def test_modinfo_by_name(tree, opts):
    root, ver = tree
    _compare(root, ["modinfo", "-k", ver, *opts, *_names(root, ver, 40), "ext4", "crc32c", "nonexist"])


def test_modinfo_by_path_and_modname(tree):
    root, ver = tree
    d = f"{root}/lib/modules/{ver}"
    paths = []
    for dirpath, _, files in os.walk(d):
        paths += [os.path.join(dirpath, f)[len(root):] for f in files if ".ko" in f]
    paths.sort()
    _compare(root, ["modinfo", "-k", ver, *paths[::60]])
    _compare(root, ["modinfo", "-k", ver, "-m", "ext4", "virtio_blk", "nonexist"])
    _compare(root, ["modinfo", "-F", "firmware", "-k", ver, *paths[::90]])
