"""Every filesystem-model backend, as factories for the behaviour and overlay suites.

A factory takes pytest's ``tmp_path_factory`` and returns ``(fs, cleanup)`` for a fresh, empty,
writable filesystem. The ext4 engine and the overlay are included automatically when importable.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS


def _memory(tpf):
    return MemoryFS(), lambda: None


def _hostdir(tpf):
    d = tpf.mktemp("hostdir")
    d.chmod(0o755)  # like a fresh filesystem's root, and like the reference
    fs = HostDirFS(str(d), writable=True)
    return fs, fs.close


def _have(mod: str, attr: str) -> bool:
    """True when ``mod`` imports and defines ``attr`` (another helper may still be writing it)."""
    try:
        if importlib.util.find_spec(mod) is None:
            return False
        return hasattr(importlib.import_module(mod), attr)
    except ImportError:
        return False


def fresh_ext4_image(tpf, size="64M") -> str:
    """A fresh ``mkfs.ext4`` image (the real tool's defaults) in a temp dir."""
    d = tpf.mktemp("ext4")
    img = str(d / "fs.img")
    mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
    # 4 KiB blocks like the host filesystem the kernel runs on, so st_blocks is comparable
    subprocess.run([mkfs, "-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,root_owner=0:0", img, size],
                   check=True, capture_output=True)
    return img


def _ext4(tpf):
    from nuwa.fs.ext4 import open_ext4
    from nuwa.formats.blockdev import RawFile

    img = fresh_ext4_image(tpf)
    dev = RawFile(img, writable=True)
    fs = open_ext4(dev, writable=True)
    fs.rmdir("/lost+found")  # the other backends start without it (root nlink, listings)

    def cleanup():
        fs.close()
        dev.close()

    return fs, cleanup


def _overlay_of(make):
    def factory(tpf):
        from nuwa.fs.overlay import Overlay

        base, cleanup = make(tpf)
        return Overlay(base), cleanup

    return factory


BACKENDS = {"memory": _memory, "hostdir": _hostdir}
if _have("nuwa.fs.overlay", "Overlay"):
    BACKENDS["overlay-memory"] = _overlay_of(_memory)
    BACKENDS["overlay-hostdir"] = _overlay_of(_hostdir)
if _have("nuwa.fs.ext4", "open_ext4"):
    BACKENDS["ext4"] = _ext4
    if "overlay-memory" in BACKENDS:
        BACKENDS["overlay-ext4"] = _overlay_of(_ext4)

#: scenario -> reason, for behaviour-suite cases the ext4 engine is known to fail (measured
#: against the host kernel; strict, so a fix shows up as XPASS and the entry must go)
EXT4_XFAIL: dict[str, str] = {
    # empty: every behaviour case agrees with the kernel (an entry here is a known deviation,
    # strict, so that a fix shows up as XPASS and the entry must go)
}
