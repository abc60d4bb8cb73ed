"""``systemd-detect-virt`` (systemd 252), for the questions a disk image answers by itself.

Kernel hooks ask it whether they run in a container (``zz-update-grub``: ``systemd-detect-virt
--quiet --container`` makes the hook skip ``update-grub``). Nuwa patches *disk images*: the
patch job describes the image's disk (``nuwa.script.disklayout``), and an image with a disk
of its own boots as a virtual (or real) machine, never inside a container, and not in a
chroot. So with that description ``--container`` answers ``none`` (exit 1) and ``--chroot``
exit 1, as the booted guest would. Which hypervisor the image will run under (``--vm``, no
option) is not in the image: deferred, as is everything without a disk description.
Mirrors ``src/detect-virt/detect-virt.c`` (``parse_argv``, ``run``): the type is printed
unless ``--quiet``; exit 0 when something was detected, 1 for ``none``.
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import layout_of

_OPTS = {"-c": "container", "--container": "container", "-r": "chroot", "--chroot": "chroot",
         "-v": "vm", "--vm": "vm", "--private-users": "private-users", "--cvm": "cvm", "--list": "list",
         "--list-cvm": "list"}


def systemd_detect_virt(inv: Invocation) -> int:
    """The ``systemd-detect-virt`` model (see the module note)."""
    mode, quiet = "any", False
    for a in inv.argv[1:]:
        if a in ("-q", "--quiet"):
            quiet = True
        elif a in _OPTS:
            mode = _OPTS[a]
        elif a.startswith("-") and len(a) > 2 and not a.startswith("--") and set(a[1:]) <= set("qcrv"):
            for c in a[1:]:
                if c == "q":
                    quiet = True
                else:
                    mode = _OPTS["-" + c]
        else:
            raise Defer(f"systemd-detect-virt {a}: not modelled")
    if mode not in ("container", "chroot"):
        raise Defer(f"systemd-detect-virt ({mode}): which hypervisor the image will run under is not in the image")
    if layout_of(inv.state) is None:
        raise Defer("systemd-detect-virt: no description of the image's disk: it may be a container's tree")
    if mode == "container" and not quiet:
        inv.out("none\n")
    return 1


def aa_enabled(inv: Invocation) -> int:
    """``aa-enabled --quiet`` and ``aa-status --enabled`` (AppArmor 3.0): is AppArmor enabled
    in the *running* kernel?

    Maintainer scripts ask it before ``apparmor_parser -r`` loads a profile into the running
    kernel (dh_apparmor's snippet). A dormant image has no running kernel to load into; the
    booted guest's ``apparmor.service`` loads every profile from ``/etc/apparmor.d`` at boot.
    So offline the answer is "no" -- exit 1, as both exit when the kernel offers no AppArmor
    interface -- and the reload that only matters to a running system is skipped (apparmor's
    own postinst: ``aa-status --enabled && parse_profiles reload``). Other forms print the
    running kernel's state or its loaded profiles: deferred.
    """
    args = inv.argv[1:]
    prog = inv.name.rsplit("/", 1)[-1]
    allowed = ("-q", "--quiet") if prog == "aa-enabled" else ("--enabled",)
    if not args or any(a not in allowed for a in args):
        raise Defer(f"{prog} {' '.join(args)}: only {' / '.join(allowed)} is modelled "
                    f"(the output describes the running kernel)")
    return 1
