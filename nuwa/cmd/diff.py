"""``nuwa diff IMAGE_A IMAGE_B [--json] [--times] [--include P]... [--exclude P]...``.

Compares the root filesystems of two images (or two bare filesystem images, or host
directories: a directory argument is read as an unpacked tree) with :func:`nuwa.api.diff`
(what :meth:`nuwa.api.Image.diff` does). The human output is grouped like ``virt-diff``;
``--json`` is one document with a summary and every entry. Both images are opened read-only.
"""

from __future__ import annotations

import json
import sys

from nuwa import api


def run_diff(args) -> int:
    """Print the differences; exit 0 whether or not the trees differ (1 only on failure)."""
    d = api.diff(args.image_a, args.image_b, times=args.times, include=args.include, exclude=args.exclude,
                 partition=args.partition, hashes=bool(args.json))
    if args.json:
        sys.stdout.write(json.dumps(d.to_json(), indent=1) + "\n")
    else:
        sys.stdout.write(d.text())
    return 0
