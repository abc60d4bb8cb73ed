"""``nuwa packages IMAGE [--json]``: installed packages, like ``dpkg-query -W``.

The text form is ``dpkg-query -W``'s default (``${binary:Package}\\t${Version}``): every
package whose state is not ``not-installed``, in dpkg's order (name, then architecture for
``Multi-Arch: same`` instances), ``name:arch`` for ``Multi-Arch: same``. ``--json`` adds the
architecture and the three words of the state.
"""

from __future__ import annotations

import json
import sys

import nuwa
from nuwa.deb.status import StatusFile


def list_packages(fs, admindir: str = "/var/lib/dpkg") -> list[dict]:
    """The package rows of the image's status database, in ``dpkg-query`` order."""
    sf = StatusFile.load(fs, admindir.rstrip("/") + "/status")
    rows = []
    for e in sf.entries:
        if e.status == "not-installed":
            continue
        rows.append({"package": e.name, "binary_package": e.nonambig(), "version": e.version,
                     "architecture": e.arch, "multi_arch": e.multiarch, "want": e.want, "flag": e.eflag,
                     "state": e.status})
    rows.sort(key=lambda r: (r["package"].encode(), r["multi_arch"] == "same", r["architecture"].encode()
                             if r["multi_arch"] == "same" else b""))
    return rows


def run_packages(args) -> int:
    """Handler of ``nuwa packages``."""
    with nuwa.open(args.image, partition=getattr(args, "partition", None)) as image:
        rows = list_packages(image.root())
    if args.json:
        json.dump({"image": args.image, "packages": rows}, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("".join(f"{r['binary_package']}\t{r['version']}\n" for r in rows))
    return 0
