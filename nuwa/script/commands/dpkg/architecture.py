"""``dpkg-architecture`` (dpkg-dev 1.21.22): the architecture variables, for the image.

The build machine is the image itself (``dpkg --print-architecture`` there: the Architecture
of its ``dpkg`` package, see :mod:`nuwa.deb.arch`), never the host Nuwa runs on; host and
target default to it, as they do when dpkg-architecture runs in the booted image. The values
come from the one table of :data:`nuwa.deb.arch.MACHINES` (dpkg's ``cputable`` and
``tupletable`` rows).

Forms modelled: ``-l``/``--list`` (the default action), ``-q VAR``/``--query VAR``,
``-e ARCH``/``--equal``, ``-i WILDCARD``/``--is``, ``-f``/``--force`` and ``-a``/``-A`` naming
the image's own architecture. As upstream, ``DEB_*`` variables already in the environment win
over computed ones unless ``-f`` is given. Deferred (reported): ``-a``/``-A`` naming another
architecture (upstream then asks ``$CC -dumpmachine``, i.e. runs the image's compiler),
``-t``/``-T``, ``-c``, ``-s``/``-u``, ``-L``, ``-W``/``-E``.
"""

from __future__ import annotations

from nuwa.deb.arch import MACHINES, Machine, native_architecture
from nuwa.script.context import Defer, Invocation

PROG = "dpkg-architecture"
_KINDS = ("BUILD", "HOST", "TARGET")
_FIELDS = ("ARCH", "ARCH_ABI", "ARCH_BITS", "ARCH_CPU", "ARCH_ENDIAN", "ARCH_LIBC", "ARCH_OS",
           "GNU_CPU", "GNU_SYSTEM", "GNU_TYPE", "MULTIARCH")


def variables(m: Machine) -> dict[str, str]:
    """The ``ARCH...``/``GNU...`` values of one machine (without the DEB_KIND_ prefix)."""
    return {
        "ARCH": m.arch, "ARCH_ABI": m.abi, "ARCH_BITS": str(m.bits), "ARCH_CPU": m.cpu,
        "ARCH_ENDIAN": m.endian, "ARCH_LIBC": "gnu", "ARCH_OS": "linux", "GNU_CPU": m.gnu_cpu,
        "GNU_SYSTEM": m.gnu_system, "GNU_TYPE": m.gnu_type, "MULTIARCH": m.multiarch,
    }


def debtuple(arch: str) -> tuple[str, str, str, str] | None:
    """``debarch_to_debtuple``: (abi, libc, os, cpu) of a Debian architecture in the table."""
    m = MACHINES.get(arch)
    return None if m is None else (m.abi, "gnu", "linux", m.cpu)


def debarch_is(real: str, alias: str) -> bool:
    """``debarch_is``: whether architecture ``real`` matches ``alias`` (an architecture or a
    wildcard such as ``linux-any``, ``any-arm64``, ``any``), as Dpkg::Arch does."""
    if real == alias or alias == "any":
        return True
    parts = alias.split("-", 3)
    if "any" in parts:
        wild = tuple(["any"] * (4 - len(parts)) + parts) if len(parts) < 4 else tuple(parts)
    else:
        wild = debtuple(alias)
    tup = debtuple(real)
    if tup is None or wild is None:
        return False
    return all(w == "any" or w == r for r, w in zip(tup, wild))


def _error(inv: Invocation, msg: str, status: int = 25) -> int:
    inv.err(f"{PROG}: error: {msg}\n")
    if status == 2:
        inv.err("\nUse --help for program usage information.\n")
    return status


def dpkg_architecture(inv: Invocation) -> int:
    """The ``dpkg-architecture`` model (see the module docstring for the forms covered)."""
    args = inv.argv[1:]
    action, operand, force = "list", None, False
    host = target = None
    i = 0
    while i < len(args):
        a = args[i]
        opt, val = a, None
        if a.startswith("--") and "=" in a:
            opt, val = a.split("=", 1)
        takes = {"-q": "query", "--query": "query", "-e": "equal", "--equal": "equal", "-i": "is", "--is": "is",
                 "-a": "host", "--host-arch": "host", "-A": "target", "--target-arch": "target"}
        if opt in takes or (len(a) > 2 and a[:2] in ("-q", "-e", "-i", "-a", "-A") and not a.startswith("--")):
            if opt not in takes:
                opt, val = a[:2], a[2:]
            if val is None:
                if i + 1 >= len(args):
                    return _error(inv, f"option '{a}' requires an argument", 2)
                val = args[i + 1]
                i += 1
            kind = takes[opt]
            if kind == "host":
                host = val
            elif kind == "target":
                target = val
            else:
                action, operand = kind, val
        elif a in ("-l", "--list"):
            action = "list"
        elif a in ("-f", "--force"):
            force = True
        elif a.startswith("-"):
            known_deferred = ("-t", "-T", "-c", "-s", "-u", "-L", "-W", "-E", "--print-set", "--print-unset",
                              "--command", "--list-known", "--match-wildcard", "--match-bits", "--match-endian",
                              "--target-type", "--host-type", "--print-format")
            if a.startswith(known_deferred):
                raise Defer(f"{PROG} {a}: not modelled")
            return _error(inv, f"unknown option '{a}'", 2)
        else:
            return _error(inv, f"unknown option '{a}'", 2)
        i += 1

    native = native_architecture(inv.fs)
    if native not in MACHINES:
        raise Defer(f"{PROG}: the image's architecture ({native or 'unknown'}) is not in the model's table")
    for name, given in (("-a", host), ("-A", target)):
        if given is not None and given != native:
            raise Defer(f"{PROG} {name} {given}: another architecture than the image's ({native}) "
                        f"needs the image's compiler (CC -dumpmachine)")
    values: dict[str, str] = {}
    for kind in _KINDS:
        for k, v in variables(MACHINES[native]).items():
            values[f"DEB_{kind}_{k}"] = v
    if not force:
        for k in values:
            if k in inv.env:
                values[k] = inv.env[k]

    if action == "list":
        inv.out("".join(f"{k}={values[k]}\n" for kind in _KINDS for k in (f"DEB_{kind}_{f}" for f in _FIELDS)))
        return 0
    if action == "query":
        if operand not in values:
            return _error(inv, f"{operand} is not a supported variable name")
        inv.out(values[operand] + "\n")
        return 0
    if action == "equal":
        return 0 if operand == values["DEB_HOST_ARCH"] else 1
    if action == "is":
        return 0 if debarch_is(values["DEB_HOST_ARCH"], operand) else 1
    return 0
