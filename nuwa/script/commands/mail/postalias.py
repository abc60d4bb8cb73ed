"""``newaliases`` and ``postalias`` (Postfix 3.7, Debian 12): rebuild ``/etc/aliases.db``.

``newaliases`` is Postfix's ``sendmail -bi`` (sendmail.c, ``SM_MODE_NEWALIAS``): with no
argument it reads main.cf's ``alias_database`` (default ``hash:/etc/aliases``, as
``postconf`` reads it, ``$`` macros expanded), returns 0 when it is empty, else execs
``postalias -- MAP...``. ``postalias`` (postalias.c ``postalias()``) with one ``hash:FILE`` (or
bare ``FILE``, ``default_database_type`` hash) creates or truncates ``FILE.db`` and stores:

- each ``name: value`` of FILE (:mod:`.aliasfile`), the key folded to lower case, key and value
  with their trailing NUL (``dict_db_update`` on Linux: ``DICT_FLAG_TRY1NULL``); a key already
  stored is not replaced and warned about (``DICT_FLAG_DUP_WARN``);
- ``@`` -> ``@`` (sendmail's "complete" mark), then without NULs and without folding
  ``YP_LAST_MODIFIED`` -> the time as ``%010ld`` and ``YP_MASTER_NAME`` -> ``$myhostname``;
- as a Berkeley DB 5.3 hash file (:mod:`nuwa.formats.bdbhash`), page size 4096 (libdb takes
  the file system's ``st_blksize``; ext4's 4 KiB blocks).

The new file's mode is 0644 less ``022 | (~mode(FILE) & 077)`` (``POSTALIAS_FLAG_SAVE_PERM``);
an existing ``FILE.db`` is truncated in place (its inode, mode and owner kept).

The file id (``uid``, 20 bytes at offset 52 of the meta page, and of page 2 where its index
does not cover it: libdb wrote page 2 from the meta page's buffer): libdb's ``__os_fileid`` writes the inode number and device of the new file,
then a unique 32-bit number (``__os_unique_id``: pid, time and a random draw hashed) and a
serial (the pid), then 4 zero bytes. Two real runs differ only there and in
``YP_LAST_MODIFIED``'s digits (with long lines also the free space of pages libdb took from
reused heap memory, see :mod:`nuwa.formats.bdbhash`). The model writes the inode of
``FILE.db`` as the file system model reports it (for a file it creates in an overlay, the
overlay's provisional number: the inode the commit allocates may differ; libdb uses the id only
to tell files apart in a shared cache, postfix's readers open the map privately), the
device the file system model reports (0: an image has no device number offline), 4 bytes
from the host's random source and a serial drawn from the same source below Linux's default
``pid_max`` (4194304), then the 4 zero bytes.

Deferred: an image whose machine is not little-endian (libdb writes in its host's byte order;
s390x's files are big-endian) or unknown, an image whose ``newaliases``/``postalias`` is not Postfix's (dpkg's file list of
postfix does not hold it: exim4 and sendmail ship their own ``newaliases``), any option, more than one map or another type than ``hash``, a relative path,
``$MAIL_CONFIG``, a ``myhostname`` not set in main.cf (its default is the running kernel's host
name), FILE not owned by root:root (postalias would run as its owner), a missing FILE, and
what :mod:`.aliasfile` and :mod:`nuwa.formats.bdbhash` do not model.
"""

from __future__ import annotations

import struct

from nuwa.deb.arch import image_machine
from nuwa.formats.bdbhash import HashDB, Unsupported
from nuwa.script.commands._common import now_ns
from nuwa.script.commands.mail.aliasfile import parse
from nuwa.script.commands.server.postconf import CONFIG_DIR, DEFAULTS, expand, read_main
from nuwa.script.context import Defer, Invocation
from nuwa.script.entropy import random_bytes

#: Linux's default ``/proc/sys/kernel/pid_max`` on 64-bit systems
PID_MAX = 4194304


#: the files that make ``newaliases`` and ``postalias`` Postfix's (dpkg's list of postfix)
POSTFIX_LIST = "/var/lib/dpkg/info/postfix.list"


def _guard(inv: Invocation, program: str) -> None:
    """Defer unless the image's ``program`` is Postfix's: exim4 and sendmail have their own
    ``newaliases`` (clamav-base's postinst runs whichever ``which`` finds)."""
    try:
        listed = set(inv.fs.read_bytes(POSTFIX_LIST).decode("utf-8", "surrogateescape").split("\n"))
    except (OSError, ValueError):
        listed = set()
    if program not in listed or "/usr/sbin/postalias" not in listed:
        raise Defer(f"{inv.name}: {program} is not Postfix's (not in {POSTFIX_LIST})")
    machine = image_machine(inv.fs)
    if machine is None or machine.endian != "little":
        raise Defer(f"{inv.name}: libdb writes in the byte order of the image's machine "
                    f"({machine.endian if machine else 'unknown'}): only little-endian files are written")


def _params(inv: Invocation) -> dict:
    if "MAIL_CONFIG" in inv.env:
        raise Defer(f"{inv.name}: $MAIL_CONFIG names another configuration directory")
    return read_main(inv, f"{CONFIG_DIR}/main.cf")


def _value(params: dict, name: str) -> str:
    value = params.get(name, DEFAULTS.get(name))
    if value is None:
        raise Defer(f"postalias: {name} is not set in main.cf (its default is computed at run time)")
    return expand(params, value)


def _fileid(inv: Invocation, path: str) -> bytes:
    st = inv.fs.lstat(path)
    unique = random_bytes(4)
    serial = 2 + int.from_bytes(random_bytes(4), "little") % (PID_MAX - 2)
    return struct.pack("<II4sII", st.st_ino & 0xFFFFFFFF, st.st_dev & 0xFFFFFFFF, unique, serial, 0)


def rebuild(inv: Invocation, params: dict, source: str) -> int:
    """``postalias hash:SOURCE``: write ``SOURCE.db``."""
    fs = inv.fs
    try:
        st = fs.stat(source)
        data = fs.read_bytes(source)
    except FileNotFoundError:
        raise Defer(f"postalias: {source} does not exist (its fatal error is not modelled)") from None
    except OSError as e:
        raise Defer(f"postalias: cannot read {source} ({e})") from None
    if (st.st_uid, st.st_gid) != (0, 0):
        raise Defer(f"postalias: {source} is not owned by root:root (postalias would run as its owner)")
    hostname = _value(params, "myhostname")
    target = source + ".db"
    # built once to know it can be (nothing is written for a Defer), then again with the
    # file id, which holds the inode of the file created first
    db = HashDB(bytes(20))
    puts: list[tuple[bytes, bytes]] = []
    warnings: list[str] = []

    def put(key: bytes, value: bytes) -> bool:
        puts.append((key, value))
        return db.put(key, value)

    def store(key: str, value: str) -> None:
        if not put(key.lower().encode("ascii") + b"\0", value.encode("ascii") + b"\0"):
            warnings.append(f"{target}: duplicate entry: \"{key.lower()}\"")
    try:
        parse(data, source, warnings.append, store)
        store("@", "@")
        put(b"YP_LAST_MODIFIED", b"%010d" % (now_ns() // 1_000_000_000))
        put(b"YP_MASTER_NAME", hostname.encode("utf-8", "surrogateescape"))
    except Unsupported as e:
        raise Defer(f"postalias: {target}: {e}") from None
    mode = 0o644 & ~(0o022 | (~st.st_mode & 0o077))
    try:
        if fs.exists(target) and not fs.stat(target).is_reg:
            raise Defer(f"postalias: {target} is not a regular file")
        if not fs.exists(target):
            fs.write_bytes(target, b"", mode)
        db = HashDB(_fileid(inv, target))
        for key, value in puts:
            db.put(key, value)
        fs.write_bytes(target, db.image())  # O_TRUNC: an existing file keeps inode, mode, owner
    except OSError as e:
        raise Defer(f"postalias: cannot write {target} ({e})") from None
    for text in warnings:
        inv.err(f"postalias: warning: {text}\n")
    return 0


def postalias(inv: Invocation) -> int:
    """``postalias [--] [hash:]FILE``."""
    args = inv.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if len(args) != 1 or args[0].startswith("-"):
        raise Defer(f"postalias {' '.join(inv.argv[1:])}: this form is not modelled")
    _guard(inv, "/usr/sbin/postalias")
    kind, colon, path = args[0].partition(":") if ":" in args[0] else ("", "", args[0])
    if (kind or "hash") != "hash" or not path.startswith("/"):
        raise Defer(f"postalias: {args[0]}: only hash: maps with an absolute path are modelled")
    params = _params(inv)
    if colon == "" and params.get("default_database_type", "hash") != "hash":
        raise Defer("postalias: default_database_type is not hash")
    return rebuild(inv, params, path)


def newaliases(inv: Invocation) -> int:
    """``newaliases``: ``postalias`` on each map of ``alias_database``."""
    if len(inv.argv) != 1:
        raise Defer(f"newaliases {' '.join(inv.argv[1:])}: this form is not modelled")
    _guard(inv, "/usr/bin/newaliases")
    params = _params(inv)
    maps = _value(params, "alias_database").replace(",", " ").split()
    if not maps:
        return 0
    if len(maps) != 1:
        raise Defer(f"newaliases: alias_database names {len(maps)} maps (one postalias run for all): not modelled")
    return postalias(Invocation(["postalias", "--", maps[0]], inv.fs, inv.cwd, inv.env, b"",
                                stdout=inv.stdout, stderr=inv.stderr, umask=inv.umask, run=inv.run,
                                state=inv.state, models=inv.models))
