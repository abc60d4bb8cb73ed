"""``nuwa diff IMAGE_A IMAGE_B [--json] [--times] [--include P]... [--exclude P]...``.

Compares the root filesystems of two images (or two bare filesystem images, or host
directories: a directory argument is read as an unpacked tree) with
:func:`nuwa.fs.diff.diff_trees`. The human output is grouped like ``virt-diff``; ``--json`` is
one document with a summary and every entry. Both images are opened read-only.
"""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack

from nuwa.fs.diff import diff_trees, format_human, to_json


def _root(stack: ExitStack, path: str, partition):
    """The root FileSystem of an image file, or a host directory read-only."""
    if os.path.isdir(path):
        from nuwa.fs.hostdir import HostDirFS

        return stack.enter_context(HostDirFS(path, writable=False))
    import nuwa

    image = stack.enter_context(nuwa.open(path, writable=False, partition=partition))
    return image.root()


def run_diff(args) -> int:
    """Print the differences; exit 0 whether or not the trees differ (1 only on failure)."""
    with ExitStack() as stack:
        a = _root(stack, args.image_a, args.partition)
        b = _root(stack, args.image_b, args.partition)
        entries = diff_trees(a, b, include=args.include, exclude=args.exclude, times=args.times,
                             hashes=bool(args.json))
        if args.json:
            sys.stdout.write(to_json(entries, a=args.image_a, b=args.image_b, times=args.times) + "\n")
        else:
            sys.stdout.write(format_human(entries))
    return 0
