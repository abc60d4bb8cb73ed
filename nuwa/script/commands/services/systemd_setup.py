"""The setup programs systemd's and udev's postinsts run (systemd 252): the machine ID and the
binary databases.

``systemd-machine-id-setup [--root=/] [--print]``
(``src/machine-id-setup/machine-id-setup-main.c``, ``src/shared/machine-id-setup.c``):
systemd's postinst runs it on every configure to make sure ``/etc/machine-id`` exists. What
the real program does with the image's files (judged in a chroot of a bookworm tree):

- ``/etc/machine-id`` holds an ID (``id128_read_fd`` with ``ID128_PLAIN``: 32 hex digits of
  either case, optionally one newline; the all-zero ID is accepted): nothing changes, status 0;
  ``--print`` prints the ID in lower case;
- otherwise (empty, ``uninitialized``, anything else, or missing) it makes one: first from
  ``/var/lib/dbus/machine-id`` when that is a regular file (not a symlink: ``O_NOFOLLOW``)
  holding an ID ("Initializing machine ID from D-Bus machine ID." on stderr), else at random
  ("... from random generator."), and writes it with a newline into the truncated file
  (its mode kept; a new file is made 0444 under umask 0).

The random case is not done offline, unlike in a chroot: on the booted machine the script
stands in for, systemd (PID 1) has already made the ID at the first boot of *that* instance.
An ID written into the image would be shared by every machine started from it (DHCP DUIDs,
journal directories, D-Bus) and would end its pending first boot (``ConditionFirstBoot=``).
So that case is dropped with this reason, the file left for the boot (``--print`` of such an
ID is deferred: nobody knows it yet). The D-Bus case is written when ``/etc/machine-id``
exists and is not ``uninitialized``: the boot would take the same ID from the same file, and
no pending first boot is ended. ``--commit`` (a transient bind mount made persistent) and
``--image``/other roots are deferred.

``journalctl [--root=/] --update-catalog`` (systemd's postinst and catalog trigger) compiles
``/var/lib/systemd/catalog/database`` from the ``*.catalog`` files as ``catalog.c`` does: see
``journal_catalog``; every other form of journalctl is deferred.

``systemd-hwdb update`` (udev's postinst) writes ``hwdb.bin`` from ``hwdb.d/*.hwdb`` byte for
byte as systemd 252 does: see ``hwdb_update`` (the program), ``hwdb_build`` (the parser) and
``hwdb_trie`` (the file format).
"""

from __future__ import annotations

import re
import stat as _stat

from nuwa.script.commands import _args
from nuwa.script.commands.services import hwdb_update, journal_catalog
from nuwa.script.context import Defer, Drop, Invocation

ETC = "/etc/machine-id"
DBUS = "/var/lib/dbus/machine-id"
_ID = re.compile(rb"[0-9a-fA-F]{32}\n?")

_SPEC = _args.spec("h", {"root": ("root", _args.REQ), "image": ("image", _args.REQ), "commit": ("commit", _args.NO),
                         "print": ("print", _args.NO), "help": "h", "version": ("version", _args.NO)})


def read_id(data: bytes) -> str | None:
    """``id128_read_fd(fd, ID128_PLAIN)``: the ID in lower case, or None when there is none."""
    return data[:32].decode("ascii").lower() if _ID.fullmatch(data) else None


def image_machine_id(inv: Invocation) -> str | None:
    """The ID systemd reads from the image's ``/etc/machine-id`` (``sd_id128_get_machine``:
    the all-zero ID counts as none), or None: then it is made at boot."""
    try:
        mid = read_id(inv.fs.read_bytes(ETC))
    except OSError:
        return None
    return None if mid is None or mid == "0" * 32 else mid


def systemd_machine_id_setup(inv: Invocation) -> int:
    """``systemd-machine-id-setup [--root=/] [--print]``: see the module note."""
    try:
        opts, ops = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        raise Defer(f"systemd-machine-id-setup: usage error ({e.text})") from None
    keys = {k for k, _ in opts}
    if ops:
        raise Defer("systemd-machine-id-setup with operands (its error is not modelled)")
    if keys & {"h", "version", "image", "commit"}:
        raise Defer(f"systemd-machine-id-setup --{sorted(keys & {'h', 'version', 'image', 'commit'})[0]}"
                    " is not modelled")
    for k, v in opts:
        if k == "root" and v.rstrip("/") != "":
            raise Defer(f"systemd-machine-id-setup --root={v}: only the image's own root is modelled")
    fs = inv.fs
    try:
        st = fs.lstat(ETC)
    except FileNotFoundError:
        st = None
    except OSError as e:
        raise Defer(f"systemd-machine-id-setup: {ETC}: {e.strerror} (error not modelled)") from None
    if st is not None and not _stat.S_ISREG(st.st_mode):
        raise Defer(f"systemd-machine-id-setup: {ETC} is not a regular file")
    current = fs.read_bytes(ETC) if st is not None else None
    mid = read_id(current) if current is not None else None
    if mid is None:
        dbus = _dbus_id(inv)
        if dbus is None or current is None or current.rstrip(b"\n") == b"uninitialized":
            if "print" in keys:
                raise Defer("systemd-machine-id-setup --print: the machine ID is made at the first boot")
            raise Drop("systemd-machine-id-setup: the machine ID is made by systemd at the first boot of each"
                       " machine started from the image (a random ID written offline would be shared by all of"
                       " them and end their first boot)")
        inv.err("Initializing machine ID from D-Bus machine ID.\n")
        mid = dbus
        fs.write_bytes(ETC, (mid + "\n").encode("ascii"), _stat.S_IMODE(st.st_mode))
    if "print" in keys:
        inv.out(mid + "\n")
    return 0


def journalctl(inv: Invocation) -> int:
    """``journalctl [--root=/] --update-catalog``: the message catalog's database, compiled as
    systemd 252 does (``journal_catalog``); every other form is deferred."""
    update, root, operands = False, None, []
    args = iter(inv.argv[1:])
    for a in args:
        if a == "--":
            operands.extend(args)
        elif a == "--update-catalog":
            update = True
        elif a.startswith("--root="):
            root = a[len("--root="):]
        elif a == "--root":
            root = next(args, None)
            if root is None:
                raise Defer("journalctl --root without its argument (the usage error is not modelled)")
        elif a.startswith("-") and a != "-":
            raise Defer(f"journalctl {a}: only --update-catalog [--root=/] is modelled")
        else:
            operands.append(a)
    if not update:
        raise Defer("journalctl: only --update-catalog is modelled (the other actions read or write the journal)")
    # parse_path_argument(optarg, suppress_root=true): empty, or "/" once made absolute and
    # simplified (path_simplify drops "." and repeated slashes, keeps ".."), is no root at all
    if root and any(c not in ("", ".") for c in inv.path(root).split("/")):
        raise Defer(f"journalctl --root={root}: only the image's own root is modelled")
    if any(k.startswith("SYSTEMD_LOG_") for k in inv.env):
        raise Defer("journalctl: SYSTEMD_LOG_* in the environment changes what it logs (not modelled)")
    if operands:
        inv.err(f"Extraneous arguments starting with '{operands[0]}'\n")
        return 1
    return journal_catalog.update_catalog(inv)


def systemd_hwdb(inv: Invocation) -> int:
    """``systemd-hwdb [--usr] [--strict] [--root=/] update``: ``hwdb.bin`` written as systemd 252
    writes it (``hwdb_update``, ``hwdb_build``, ``hwdb_trie``); ``query`` and the rest deferred."""
    return hwdb_update.systemd_hwdb_update(inv)


def _dbus_id(inv: Invocation) -> str | None:
    """D-Bus's machine ID, read as ``generate_machine_id`` does (a symlink is not followed)."""
    try:
        st = inv.fs.lstat(DBUS)
        if not _stat.S_ISREG(st.st_mode):
            return None
        mid = read_id(inv.fs.read_bytes(DBUS))
    except OSError:
        return None
    if mid == "0" * 32:
        raise Defer("systemd-machine-id-setup: an all-zero D-Bus machine ID (not modelled)")
    return mid
