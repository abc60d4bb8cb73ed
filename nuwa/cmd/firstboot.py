"""``nuwa firstboot IMAGE [--json]``: the first-boot job's entries and, after a boot, their outcome.

Read-only: the image is opened as for ``nuwa ls`` and the job directories are read through
the filesystem model (:mod:`nuwa.script.firstboot_status`). Works on an image never booted
(entries ``pending``), one booted and stopped (the finished job ``firstboot.last`` points at,
with each entry's outcome and log) and one with no job (``state: none``). The JSON document
adds ``dpkg_notes``: packages dpkg's database records as installed although work deferred
from their scripts failed, timed out or was interrupted at boot.
"""

from __future__ import annotations

import json
import sys

import nuwa
from nuwa.script.firstboot_status import summary_lines


def run_firstboot(args) -> int:
    """Handler of ``nuwa firstboot``: :meth:`nuwa.api.Image.firstboot`, printed."""
    with nuwa.open(args.image, partition=getattr(args, "partition", None)) as image:
        doc = image.firstboot()
    if args.json:
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        lines = summary_lines(doc) + [f"dpkg: {n}" for n in doc["dpkg_notes"]]
        sys.stdout.write("".join(line + "\n" for line in lines))
    return 0
