"""The ldd model against the real ldd of the kernel tree (glibc 2.36, run in a chroot).

The real ldd runs the tree's own loader in trace mode; the model walks the same files. Load
addresses are random on the real side (ASLR) and are masked on both; everything else --
names, paths, order, "not found" lines, messages on stderr and the exit status -- must match.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation

MODELS = default_models()
pytestmark = [pytest.mark.judge, pytest.mark.root, pytest.mark.slow]

_ADDR = re.compile(rb"\(0x[0-9a-f]+\)")


def _real(root: str, args: list[str]) -> tuple[int, bytes, bytes]:
    r = subprocess.run(["chroot", root, "ldd", *args], capture_output=True,
                       env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"})
    return r.returncode, _ADDR.sub(b"(ADDR)", r.stdout), r.stderr


def _model(root: str, args: list[str]) -> tuple[int, bytes, bytes]:
    inv = Invocation(["ldd", *args], HostDirFS(root), env={"PATH": "/usr/bin:/bin"}, models=MODELS)
    st = MODELS["ldd"](inv)
    return st, _ADDR.sub(b"(ADDR)", bytes(inv.stdout)), bytes(inv.stderr)


@pytest.fixture(scope="module")
def tree():
    return kernel_tree()  # both sides only read it


def _programs(root: str) -> list[str]:
    """What initramfs hooks pass to copy_exec, plus every program of /usr/sbin and some libraries."""
    out = ["/sbin/modprobe", "/bin/kmod", "/lib/systemd/systemd-udevd", "/bin/udevadm", "/lib/udev/ata_id",
           "/lib/udev/scsi_id", "/sbin/e2fsck", "/sbin/fsck", "/sbin/logsave"]
    out += sorted("/usr/sbin/" + n for n in os.listdir(os.path.join(root, "usr/sbin"))
                  if os.path.isfile(os.path.join(root, "usr/sbin", n)))
    libdir = os.path.join(root, "usr/lib/x86_64-linux-gnu")
    out += sorted("/usr/lib/x86_64-linux-gnu/" + n for n in os.listdir(libdir)
                  if ".so." in n and os.path.isfile(os.path.join(libdir, n)))[:40]
    return out


def test_every_program_lists_the_same_objects_as_the_real_ldd(tree):
    progs = [p for p in _programs(tree) if os.path.exists(tree + p)]
    assert len(progs) > 60
    mismatches, deferred = [], []
    for p in progs:
        try:
            got = _model(tree, [p])
        except Defer as d:
            deferred.append((p, d.reason))
            continue
        want = _real(tree, [p])
        if got != want:
            mismatches.append((p, want, got))
    assert not mismatches, mismatches[:3]
    # only the loader itself ("statically linked") may be left to the real program
    assert all("DT_NEEDED" in r for _p, r in deferred), deferred


def test_several_files_missing_files_and_non_elf_files(tree):
    args = ["/sbin/modprobe", "/etc/passwd", "/nonexistent", "/usr/lib/klibc/bin/cat", "/etc", "/bin/kmod"]
    assert _model(tree, args) == _real(tree, args)


def test_a_missing_library_is_reported_not_found(tmp_path):
    root = link_tree(kernel_tree(), str(tmp_path / "root"))
    libdir = os.path.join(root, "usr/lib/x86_64-linux-gnu")
    for n in os.listdir(libdir):  # the file and its soname link: neither cache nor directory finds it
        if n.startswith("libpcre2-8.so"):
            os.unlink(os.path.join(libdir, n))
    for args in (["/lib/systemd/systemd-udevd"], ["/usr/lib/x86_64-linux-gnu/libselinux.so.1"]):
        want = _real(root, args)
        assert b"not found" in want[1]
        assert _model(root, args) == want


def test_what_depends_on_the_booting_cpu_or_the_environment_is_deferred():
    fs = MemoryFS()
    fs.makedirs("/usr/bin")
    fs.write_bytes("/usr/bin/x", b"\x7fELF", 0o755)
    inv = Invocation(["ldd", "/usr/bin/x"], fs, env={"LD_LIBRARY_PATH": "/opt/lib"}, models=MODELS)
    with pytest.raises(Defer, match="LD_LIBRARY_PATH"):
        MODELS["ldd"](inv)
    with pytest.raises(Defer, match="options"):
        MODELS["ldd"](Invocation(["ldd", "-r", "/usr/bin/x"], fs, models=MODELS))
