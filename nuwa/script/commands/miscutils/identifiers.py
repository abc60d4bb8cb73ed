"""Identifier generators that maintainer scripts call once, at install, to name the machine:
``iscsi-iname`` (open-iscsi 2.1.8), ``nvme gen-hostnqn``/``show-hostnqn`` (nvme-cli 2.3 with
libnvme 1.3) and ``uuidgen`` (util-linux 2.38.1).

open-iscsi's postinst writes ``InitiatorName=$(iscsi-iname -p iqn.1993-08.org.debian:01)`` to
``/etc/iscsi/initiatorname.iscsi``; nvme-cli's writes ``nvme gen-hostnqn`` to
``/etc/nvme/hostnqn`` and ``uuidgen`` to ``/etc/nvme/hostid``. Each value must be unique to the
machine, so the random part comes from the host's ``os.urandom`` (``uuid.uuid4``), never from
a seed: two images patched alike get different names, as two machines installing the package
would.

What the real programs read, and why the offline answer is a chroot's:

- ``iscsi-iname`` hashes 16 bytes of ``/dev/urandom``, the time of day, ``gethostid()`` and
  ``uname()`` with MD5, then prints 6 of the digest's bytes chosen by one more random byte:
  the result is uniformly random whatever the machine, so 6 random bytes are printed the same
  way (``%x`` each, without padding: 6 to 12 hex digits).
- ``nvme gen-hostnqn`` takes the DMI product UUID (``/sys/class/dmi/id/product_uuid``) on a
  booted machine that has one (a VM with SMBIOS), else the device tree's partition UUID, else
  a random UUID. A dormant image has nothing mounted on ``/sys`` or ``/proc`` — exactly what a
  chroot install sees — so the answer is the random UUID a chroot install writes. An image
  that does have those files (a tree copied from a running system) is deferred.
- ``nvme show-hostnqn`` prints the first line of ``/etc/nvme/hostnqn`` (its first 222 bytes, to
  a NUL or newline), and what ``gen-hostnqn`` prints when the file is missing or empty.
- ``uuidgen`` (and ``-r``) prints a random (version 4) UUID; time-based and name-based forms
  are deferred.

Judged against the real programs in a chroot of a bookworm tree with the packages installed
(formats by regular expression and length; usage errors byte for byte), and the two
postinsts' files against real dpkg's (tests/script/test_services_dormant.py).
"""

from __future__ import annotations

from nuwa.script.commands import _args
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes, random_uuid

# ---- a getopt_long that acts in order ----------------------------------------------------------


def getopt_seq(inv: Invocation, short: str, longs: dict[str, tuple[str, bool]]):
    """:func:`nuwa.script.commands._args.events` for programs whose every option is declared:
    ``longs`` maps a name to (key, takes an argument); an unknown option is glibc's usage error,
    yielded as ``("error", message)`` with ``argv[0]``'s prefix, as glibc 2.36 prints it."""
    sp = _args.spec(short, {n: (key, _args.REQ if needs else _args.NO) for n, (key, needs) in longs.items()})
    for ev in _args.events(inv, sp, unknown_is_error=True):
        if ev[0] == "error":
            yield "error", f"{inv.argv[0]}: {ev[1].text}\n"
            return
        yield ev


# ---- iscsi-iname -------------------------------------------------------------------------------

_ISCSI_DEFAULT_PREFIX = "iqn.2016-04.com.open-iscsi"
#: iSCSI names are at most 223 characters: 13 are kept for ":" and 12 hex digits
_ISCSI_PREFIX_MAX = 210
_ISCSI_USAGE = ("Usage: iscsi-iname [OPTIONS]\n"
                "Where OPTIONS are from:\n"
                f"    -p/--prefix <prefix>          -- set IQN prefix [{_ISCSI_DEFAULT_PREFIX}]\n"
                "    -g/--generate-iname-prefix    -- generate the InitiatorName= prefix\n"
                f"where <prefix> has max length of {_ISCSI_PREFIX_MAX}\n")


def iscsi_iname(inv: Invocation) -> int:
    """``iscsi-iname [-p PREFIX] [-g]`` (open-iscsi 2.1.8 ``utils/iscsi-iname.c``): a new
    InitiatorName, ``PREFIX:`` then 6 random bytes each printed ``%x``."""
    prefix, with_key = _ISCSI_DEFAULT_PREFIX, False
    longs = {"help": ("h", False), "prefix": ("p", True), "generate-iname-prefix": ("g", False)}
    for ev in getopt_seq(inv, "p:gh", longs):
        if ev[0] == "error":
            inv.err(ev[1] + _ISCSI_USAGE)
            return 1
        if ev[0] == "operands":
            if ev[1]:
                inv.err("unknown argument(s)\n" + _ISCSI_USAGE)
                return 1
            break
        _, key, val = ev
        if key == "h":
            inv.err(_ISCSI_USAGE)
            return 0
        if key == "g":
            with_key = True
        elif key == "p":
            # strnlen on the C string: the bytes of the argument
            if len(val.encode("utf-8", "surrogateescape")) > _ISCSI_PREFIX_MAX:
                inv.err("error: prefix too long\n" + _ISCSI_USAGE)
                return 1
            prefix = val
    digits = "".join(f"{b:x}" for b in random_bytes(6))
    inv.out(f"{'InitiatorName=' if with_key else ''}{prefix}:{digits}\n")
    return 0


# ---- nvme --------------------------------------------------------------------------------------

_HOSTNQN_FILE = "/etc/nvme/hostnqn"
#: NVMF_NQN_SIZE: libnvme reads at most this minus one bytes of the hostnqn file
_NQN_SIZE = 223
#: where libnvme 1.3's ``nvmf_hostnqn_generate`` looks for a machine UUID before a random one
_MACHINE_UUID_SOURCES = ("/sys/class/dmi/id/product_uuid", "/sys/firmware/dmi/entries/1-0/raw",
                         "/proc/device-tree/ibm,partition-uuid")


def _generate_hostnqn(inv: Invocation) -> str:
    for p in _MACHINE_UUID_SOURCES:
        try:
            inv.fs.lstat(p)
        except OSError:
            continue
        raise Defer(f"nvme {inv.argv[1]}: the image has {p}, a machine UUID libnvme would use "
                    "(the model answers for a dormant image, whose /sys and /proc are empty)")
    return f"nqn.2014-08.org.nvmexpress:uuid:{random_uuid()}\n"


def nvme(inv: Invocation) -> int:
    """``nvme gen-hostnqn`` and ``nvme show-hostnqn`` (nvme-cli 2.3): both ignore any further
    argument. Every other sub-command talks to NVMe devices or prints help: deferred."""
    sub = inv.argv[1] if len(inv.argv) > 1 else ""
    if sub == "gen-hostnqn":
        inv.out(_generate_hostnqn(inv))
        return 0
    if sub == "show-hostnqn":
        try:
            data = inv.fs.read_bytes(_HOSTNQN_FILE)[:_NQN_SIZE - 1]
        except OSError:  # missing, a directory, unreadable: libnvme returns no hostnqn
            data = b""
        line = data.split(b"\0", 1)[0]  # a C string: strlen, then strcspn(buf, "\n")
        if line:
            inv.out(line.split(b"\n", 1)[0] + b"\n")
        else:
            inv.out(_generate_hostnqn(inv))
        return 0
    raise Defer(f"nvme {sub}: only gen-hostnqn and show-hostnqn are modelled" if sub else
                "nvme without a sub-command prints its help")


# ---- uuidgen -----------------------------------------------------------------------------------

def uuidgen(inv: Invocation) -> int:
    """``uuidgen [-r] [-x]`` (util-linux 2.38.1 ``misc-utils/uuidgen.c``): a random UUID; extra
    operands are ignored as uuidgen ignores them. ``-t`` (time and MAC address), ``-m``/``-s``
    with ``-n``/``-N`` (name-based) and ``--help`` are deferred."""
    longs = {"random": ("r", False), "time": ("t", False), "version": ("V", False), "help": ("h", False),
             "md5": ("m", False), "sha1": ("s", False), "namespace": ("n", True), "name": ("N", True),
             "hex": ("x", False)}
    kind = "r"
    for ev in getopt_seq(inv, "rtVhn:N:msx", longs):
        if ev[0] == "error":
            inv.err(ev[1] + "Try 'uuidgen --help' for more information.\n")
            return 1
        if ev[0] == "operands":
            break
        key = ev[1]
        if key == "V":
            inv.out("uuidgen from util-linux 2.38.1\n")
            return 0
        if key in "rtms":
            kind = key  # the last type named wins
        elif key in "hnN":
            raise Defer(f"uuidgen {' '.join(inv.argv[1:])}: help and name-based UUIDs are not modelled")
    if kind != "r":
        raise Defer(f"uuidgen -{kind}: time- and name-based UUIDs are not modelled")
    inv.out(f"{random_uuid()}\n")
    return 0
