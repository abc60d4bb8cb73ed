"""``nuwa packages IMAGE [--json]``: installed packages, like ``dpkg-query -W``.

The text form is ``dpkg-query -W``'s default (``${binary:Package}\\t${Version}``): every
package whose state is not ``not-installed``, in dpkg's order (name, then architecture for
``Multi-Arch: same`` instances), ``name:arch`` for ``Multi-Arch: same``. ``--json`` is
:meth:`nuwa.api.Image.packages`: the same rows with the architecture and the three words of
the state.
"""

from __future__ import annotations

import json
import sys

import nuwa


def run_packages(args) -> int:
    """Handler of ``nuwa packages``."""
    with nuwa.open(args.image, partition=getattr(args, "partition", None)) as image:
        doc = image.packages()
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        # bytes, as dpkg-query prints them: a field that is not UTF-8 (read with surrogate
        # escapes) goes out as the bytes it was, never as an encoding error
        text = "".join(f"{r['binary_package']}\t{r['version']}\n" for r in doc["packages"])
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8", "surrogateescape"))
        sys.stdout.buffer.flush()
    return 0
