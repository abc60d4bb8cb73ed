"""Model of ``lsmod`` (kmod 30): the modules the running kernel has loaded.

A dormant image runs no kernel, so no module is loaded: the answer is kmod's header line alone
and status 0 -- the rule of docs/firstboot.md for probes of running state (a probe is answered
as the dormant system answers; the booted kernel loads what its configuration asks for, and a
script that needs to react to that runs again when it matters, at its next trigger or upgrade).
Any argument is a usage error (``Usage: ARGV0`` on stderr, status 1), as in kmod's
``do_lsmod``, which takes none -- ``-h`` and ``--version`` included.
"""

from __future__ import annotations

from nuwa.script.context import Invocation

#: kmod's lsmod.c header (the module name column is 19 wide, then the size right-aligned in 8)
HEADER = "Module                  Size  Used by\n"


def lsmod(inv: Invocation) -> int:
    """``lsmod``: see the module note."""
    if len(inv.argv) != 1:
        inv.err(f"Usage: {inv.argv[0]}\n")
        return 1
    inv.out(HEADER)
    return 0
