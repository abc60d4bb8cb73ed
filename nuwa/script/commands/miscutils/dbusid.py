"""Model of ``dbus-uuidgen`` (dbus 1.14.10): the D-Bus machine ID.

dbus-daemon's postinst runs ``dbus-uuidgen --ensure``: make sure ``/var/lib/dbus/machine-id``
holds the machine's ID. The real program (``_dbus_read_local_machine_uuid``) reads that file;
failing that, it reads ``/etc/machine-id`` and copies it there (mode 0644, through a temporary
file renamed over it; a failed copy is not an error); failing both, it makes a new random ID.

Offline, the copy is made exactly. A *new* ID is not: it names one machine, and an image is a
template its clones boot from (systemd makes each instance's ``/etc/machine-id`` at its first
boot, and dbus falls back to that file). So with no valid ID in the image, ``--ensure`` is
dropped and reported, as ``systemd-machine-id-setup`` is; ``--ensure=FILE`` that would create
FILE is deferred to the first boot. ``dbus-uuidgen`` alone prints a new random ID (12 bytes from
the host's ``os.urandom``, then the time as 4 big-endian bytes, as ``_dbus_generate_uuid``), and
``--get[=FILE]`` prints the ID read.

How an ID file is read (``_dbus_read_uuid_file_without_creating``): white space around it is
cut; the rest must be 32 characters; their hex decoding stops at the first non-hex character,
keeping the half byte begun (so ``...deg`` reads as ``...de0``); no character decoded is "invalid
hex data", fewer than 16 bytes are reported with their count. The ID is printed in lower case.
Messages go to stderr; usage errors (``Usage: ARGV0 [--ensure[=FILENAME]] [--get[=FILENAME]]``)
exit 1, ``--help`` 0.
"""

from __future__ import annotations

import posixpath
import struct
import time

from nuwa.script.commands._common import errno_text
from nuwa.script.context import Defer, Drop, Invocation
from nuwa.script.entropy import random_bytes

DBUS_FILE = "/var/lib/dbus/machine-id"
ETC_FILE = "/etc/machine-id"
VERSION = ("D-Bus UUID Generator 1.14.10\nCopyright (C) 2006 Red Hat, Inc.\n"
           "This is free software; see the source for copying conditions.\n"
           "There is NO warranty; not even for MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.\n")
_HEX = "0123456789abcdefABCDEF"


class _IdError(Exception):
    pass


def _hex_decode(text: str) -> tuple[bytes, int]:
    """``_dbus_string_hex_decode``: (bytes, characters consumed)."""
    out = bytearray()
    high = True
    n = 0
    for c in text:
        if c not in _HEX:
            break
        v = int(c, 16)
        if high:
            out.append(v << 4)
        else:
            out[-1] |= v
        high = not high
        n += 1
    return bytes(out), n


def read_id_file(inv: Invocation, path: str) -> str:
    """The ID in ``path`` (lower-case hex), or :class:`_IdError` with dbus's message."""
    try:
        st = inv.fs.stat(path)
        if st.is_dir:
            raise Defer(f"dbus-uuidgen: {path} is a directory (its error is not modelled)")
        data = inv.fs.read_bytes(path)
    except OSError as e:
        raise _IdError(f'Failed to open "{path}": {errno_text(e)}') from None
    text = data.decode("latin-1").strip(" \t\n\r\f\v")
    if len(text) != 32:
        raise _IdError(f"UUID file '{path}' should contain a hex string of length 32, not length {len(text)}, "
                       "with no other text")
    raw, used = _hex_decode(text)
    if used == 0:
        raise _IdError(f"UUID file '{path}' contains invalid hex data")
    if len(raw) != 16:
        raise _IdError(f"UUID file '{path}' contains {len(raw)} bytes of hex-encoded data instead of 16")
    return raw.hex()


def _write_id(inv: Invocation, path: str, uid: str) -> bool:
    """``_dbus_write_uuid_file``: the ID and a newline, mode 0644, replacing what was there."""
    d = posixpath.dirname(path)
    try:
        if not inv.fs.stat(d).is_dir:
            return False
    except OSError:
        return False
    try:
        if inv.fs.lexists(path) and inv.fs.lstat(path).is_dir:
            return False
        if inv.fs.lexists(path):
            inv.fs.unlink(path)  # rename(2) of the temporary file replaces a file or a link
        inv.fs.write_bytes(path, (uid + "\n").encode(), 0o644)
        inv.fs.chmod(path, 0o644)
        inv.fs.chown(path, 0, 0)
    except OSError:
        return False
    return True


def _new_id() -> str:
    return (random_bytes(12) + struct.pack(">I", int(time.time()) & 0xFFFFFFFF)).hex()


def _usage(inv: Invocation, status: int) -> int:
    inv.err(f"Usage: {inv.argv[0]} [--ensure[=FILENAME]] [--get[=FILENAME]]\n")
    return status


def dbus_uuidgen(inv: Invocation) -> int:
    """``dbus-uuidgen [--ensure[=FILENAME]] [--get[=FILENAME]]``: see the module note."""
    get = ensure = False
    filename = None
    for arg in inv.argv[1:]:
        if arg == "--help":
            return _usage(inv, 0)
        if arg == "--version":
            inv.out(VERSION)
            return 0
        for opt in ("--get", "--ensure"):
            if arg == opt or arg.startswith(opt + "="):
                if opt == "--get":
                    get = True
                else:
                    ensure = True
                if "=" in arg:
                    if filename is not None:
                        raise Defer("dbus-uuidgen with two FILENAMEs (its handling is not modelled)")
                    filename = arg.split("=", 1)[1] or None
                break
        else:
            return _usage(inv, 1)
    if get and ensure:
        inv.err("Can't specify both --get and --ensure\n")
        return 1
    if not get and not ensure:
        inv.out(_new_id() + "\n")
        return 0
    path = inv.path(filename) if filename else None
    if path is not None:
        try:
            uid = read_id_file(inv, path)
        except _IdError as e:
            missing = str(e).startswith("Failed to open") and not inv.fs.lexists(path)
            if get or not missing:
                inv.err(f"{e}\n")
                return 1
            raise Defer(f"dbus-uuidgen --ensure={filename}: would make a new machine ID in {path}; "
                        "each instance makes its own at its first boot") from None
        if get:
            inv.out(uid + "\n")
        return 0
    errors = []
    uid = None
    for p in (DBUS_FILE, ETC_FILE):
        try:
            uid = read_id_file(inv, p)
            break
        except _IdError as e:
            errors.append(str(e))
    if uid is None:
        if get:
            inv.err("D-Bus library appears to be incorrectly set up: see the manual page for dbus-uuidgen to "
                    f"correct this issue. ({'; '.join(errors)})\n")
            return 1
        raise Drop("dbus-uuidgen --ensure: no machine ID in the image; systemd makes /etc/machine-id at each "
                   "instance's first boot and D-Bus reads it from there")
    if get:
        inv.out(uid + "\n")
    elif len(errors) == 1:  # found in /etc/machine-id: copied for D-Bus (failures ignored)
        _write_id(inv, DBUS_FILE, uid)
    return 0
