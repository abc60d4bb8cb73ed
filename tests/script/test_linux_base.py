"""linux-base's ``linux-version`` and ``linux-update-symlinks`` against the real Perl programs,
run in a chroot of a copy of ``kernel_tree()`` with two or three kernel versions in /boot
(the extra ``vmlinuz-V`` files are fakes). The same shell script runs under real dash in the
chroot and in Nuwa's interpreter on the other copy: same stdout, stderr, status, and the same
symlinks in / and /boot afterwards.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree, kernel_versions
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.linuxbase.linux_base import abs2rel, canonpath, version_cmp
from nuwa.script.interp import run_script
from nuwa.script.record import DEFERRED

MODELS = default_models()
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}
VERSIONS = ["6.1.0-50-cloud-amd64", "6.1.0-57-cloud-amd64", "6.10.0-1-amd64", "6.1.0-rc3-amd64", "6.1.0-trunk-amd64",
            "5.10.0-28-amd64", "6.1", "6.1.0", "6.1.0-50", "2.6.32.1", "2.6.32-5", "6.1.0-50-Cloud", "3.2.0-4-686-pae"]


@pytest.fixture
def pair(tmp_path):
    # link_tree: overlay copies of the cached tree as root (the programs read only /boot and
    # /etc/kernel-img.conf, write only symlinks in / and /boot; the modules, documentation and
    # translations a hard-linked copy used to leave out, to be cheap, are there and unread)
    tree = kernel_tree()
    real, sim = link_tree(tree, str(tmp_path / "real")), link_tree(tree, str(tmp_path / "sim"))
    for root in (real, sim):
        for name, data in (("vmlinuz-6.1.0-57-cloud-amd64", b"new kernel\n"), ("vmlinuz-5.10.0-28-amd64", b"old\n"),
                           ("vmlinuz-6.1.0-57-cloud-amd64.sig", b"sig\n"), ("initrd.img-5.10.0-28-amd64", b"i\n"),
                           ("vmlinux-4.19.0-9-amd64", b"x\n")):
            with open(os.path.join(root, "boot", name), "wb") as f:
                f.write(data)
    return real, sim


def _links(root: str) -> dict[str, str]:
    out = {}
    for d in ("", "boot"):
        for n in sorted(os.listdir(os.path.join(root, d))):
            p = os.path.join(root, d, n)
            if os.path.islink(p) or n.startswith(("vmlinu", "initrd")):
                out[os.path.join(d, n)] = os.readlink(p) if os.path.islink(p) else "file"
    return out


def _both(real: str, sim: str, script: str, stdin: bytes = b"", env: dict | None = None):
    env = {**ENV, **(env or {})}
    r = subprocess.run(["chroot", real, "/bin/sh", "-c", script], input=stdin, capture_output=True, env=env)
    res = run_script(HostDirFS(sim, writable=True), script, env=env, stdin=stdin, models=MODELS)
    assert res.record.counts[DEFERRED] == 0 and not res.deferred_whole, res.deferred_commands
    assert (res.stdout.decode(), res.stderr.decode(), res.status) == (r.stdout.decode(), r.stderr.decode(), r.returncode)
    assert _links(sim) == _links(real)
    return r


@pytest.mark.judge
def test_linux_version_compare_every_pair_and_op(pair):
    real, sim = pair
    vs = " ".join(VERSIONS)
    script = (f"for a in {vs}; do for b in {vs}; do for op in lt le eq ge gt; do "
              "if linux-version compare $a $op $b; then echo \"$a $op $b\"; fi; done; done; done")
    r = _both(real, sim, script)
    assert r.stdout.count(b"\n") > len(VERSIONS) ** 2


@pytest.mark.judge
def test_linux_version_sort_list_and_usage(pair):
    real, sim = pair
    lines = "".join(f"{v} tail {i}\n" for i, v in enumerate(VERSIONS + VERSIONS[:3])).encode() + b"6.1.0-9 no newline"
    _both(real, sim, "linux-version sort; echo $?; linux-version sort --reverse </dev/null", lines)
    _both(real, sim, "linux-version sort --reverse", lines)
    _both(real, sim, "linux-version sort " + " ".join(VERSIONS) + "; linux-version sort --reverse " + " ".join(VERSIONS))
    _both(real, sim, "linux-version list; linux-version list --paths; linux-version list | linux-version sort --reverse")
    for bad in ("linux-version", "linux-version compare 1 xx 2", "linux-version compare 1 lt", "linux-version list -x",
                "linux-version frob", "linux-version list --help", "linux-version help", "/usr/bin/linux-version"):
        _both(real, sim, bad + "; echo status $?")


CONFS = [
    None,
    "do_symlinks = yes\n",
    "# only in /boot\nlink_in_boot = Yes\n",
    "do_symlinks = no\n",
    "image_dest = /boot//  extra words\nfoo = bar\nDo_Bootloader = no\nnot a setting\nlink_in_boot = maybe\n"
    "no_symlinks = 1\n  \n",
    "image_dest=/srv\n",
]


@pytest.mark.judge
@pytest.mark.parametrize("conf", range(len(CONFS)))
def test_linux_update_symlinks_install_upgrade_remove(pair, conf):
    real, sim = pair
    assert kernel_versions(kernel_tree()) == ["6.1.0-50-cloud-amd64"]
    for root in (real, sim):
        if CONFS[conf] is not None:
            with open(os.path.join(root, "etc/kernel-img.conf"), "w") as f:
                f.write(CONFS[conf])
        os.makedirs(os.path.join(root, "srv"), exist_ok=True)
    steps = [
        "linux-update-symlinks upgrade 6.1.0-57-cloud-amd64 /boot/vmlinuz-6.1.0-57-cloud-amd64",
        "linux-update-symlinks install 6.1.0-57-cloud-amd64 /boot/vmlinuz-6.1.0-57-cloud-amd64",
        "linux-update-symlinks upgrade 6.1.0-50-cloud-amd64 /boot/vmlinuz-6.1.0-50-cloud-amd64",
        "INITRD=No linux-update-symlinks install 5.10.0-28-amd64 /boot/vmlinuz-5.10.0-28-amd64",
        "rm /boot/vmlinuz-6.1.0-57-cloud-amd64; linux-update-symlinks remove 6.1.0-57-cloud-amd64 "
        "/boot/vmlinuz-6.1.0-57-cloud-amd64",
        "linux-update-symlinks install 6.1.0-57-cloud-amd64",
        "linux-update-symlinks --help",
        "rm /boot/vmlinu*; linux-update-symlinks remove 6.1.0-50-cloud-amd64 /boot/vmlinuz-6.1.0-50-cloud-amd64",
    ]
    for step in steps:
        _both(real, sim, step + "; echo status $?")


def test_version_cmp_and_file_spec_pieces():
    """Small facts of the Perl the judges above exercise as a whole."""
    assert version_cmp("6.1.0-rc3", "6.1.0") == -1 and version_cmp("6.1.0", "6.1.0") == 0
    assert version_cmp("2.6.32.1", "2.6.32-5") == 1  # '.' > '-'
    assert version_cmp("6.10.0", "6.9.0") == 1
    assert canonpath("/boot//./x/") == "/boot/x" and canonpath("/../x") == "/x"
    assert abs2rel("/boot/vmlinuz-1", "/") == "boot/vmlinuz-1"
    assert abs2rel("/boot/vmlinuz-1", "/boot/") == "vmlinuz-1"
    assert abs2rel("/boot/vmlinuz-1", "/srv/") == "../boot/vmlinuz-1"


def test_update_symlinks_refuses_before_changing_anything(tmp_path):
    """A directory where a link goes, or SELinux's restorecon: deferred, nothing changed."""
    from nuwa.script.context import Defer, Invocation

    root = tmp_path / "t"
    for d in ("boot", "etc", "var/lib/dpkg", "usr/bin", "sbin"):
        (root / d).mkdir(parents=True)
    (root / "var/lib/dpkg/arch").write_text("amd64\n")
    (root / "boot/vmlinuz-6.1.0-1-amd64").write_text("k")
    (root / "vmlinuz.old").symlink_to("boot/vmlinuz-5")
    (root / "vmlinuz").mkdir()
    fs = HostDirFS(str(root), writable=True)

    def run_model():
        inv = Invocation(argv=["linux-update-symlinks", "install", "6.1.0-1-amd64", "/boot/vmlinuz-6.1.0-1-amd64"],
                         fs=fs, env=dict(ENV), models=MODELS,
                         run=lambda argv, stdin=b"", env=None: (0, b"amd64\n", b""))
        return MODELS["linux-update-symlinks"](inv)

    with pytest.raises(Defer, match="is a directory"):
        run_model()
    assert os.readlink(root / "vmlinuz.old") == "boot/vmlinuz-5"
    (root / "vmlinuz").rmdir()
    (root / "sbin/restorecon").write_text("#!/bin/sh\n")
    with pytest.raises(Defer, match="restorecon"):
        run_model()
    assert os.readlink(root / "vmlinuz.old") == "boot/vmlinuz-5" and not (root / "vmlinuz").exists()
    (root / "sbin/restorecon").unlink()
    assert run_model() == 0
    assert os.readlink(root / "vmlinuz") == "boot/vmlinuz-6.1.0-1-amd64"
