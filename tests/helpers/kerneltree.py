"""The judges' kernel material: one cached bookworm tree with a kernel, initramfs-tools, GRUB and
Python, shared by the depmod, initramfs, GRUB and byte-compilation judges (tests/debian_tree.py
builds it once per day; tests copy it before changing anything).

Built from the suite's main only, so its kernel and Python are older than the point release or
security updates pending for it: the material for "patch the kernel offline".
"""
from __future__ import annotations

import glob
import os

from debian_tree import bookworm_tree

KERNEL_EXTRA = ("grub-pc", "initramfs-tools", "linux-image-cloud-amd64", "python3", "zstd")


def kernel_tree() -> str:
    """Path of the cached tree (read-only by convention)."""
    return bookworm_tree(KERNEL_EXTRA)


def kernel_versions(tree: str) -> list[str]:
    """The kernel versions installed in ``tree`` (names under /lib/modules), sorted."""
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(tree, "lib/modules/*"))
                  if os.path.isdir(p))
