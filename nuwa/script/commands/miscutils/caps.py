"""``setcap`` and ``getcap`` (libcap2-bin 2.66 of Debian 12): file capabilities in the image.

Maintainer scripts of iputils-ping, libgstreamer1.0-0, monitoring-plugins-basic, iproute2 and
others give a program capabilities instead of the set-user-id bit (``setcap cap_net_raw+ep
/bin/ping``) and ask what a file has (``getcap /bin/ip | grep ...``). Both act on one extended
attribute, ``security.capability``, which the image's filesystem model stores; the text form
and the attribute's bytes are those of libcap (``capnames``).

The programs are transcriptions of libcap's ``progs/setcap.c`` and ``progs/getcap.c`` with the
library calls they make (``cap_set_file``, ``cap_get_file``, ``cap_compare``), and of what the
guest's kernel (Linux 6.1, ``security/commoncap.c``) does with the attribute: it stores a
revision 2 value as given and a revision 3 one with its rootid, and reads a revision 3 value
whose rootid is 0 back as revision 2. ``setcap`` does not touch the mode: a set-user-id bit
stays until the script's own ``chmod u-s``.

Deferred: ``setcap`` on a FIFO or a device node (Debian's security update of 2026 opens the
file for reading first, which blocks on a FIFO and opens the device; earlier 2.66 builds
report "Invalid file"), ``setcap`` by a user other than root (raising ``CAP_SETFCAP`` is the
running kernel's decision) or through ``su``/``runuser`` at all (their view of the image does
not model extended attributes), and ``getcap`` of a file whose attribute is neither a revision 2
nor a revision 3 value (the kernel's answer to a malformed value is not modelled).
"""

from __future__ import annotations

import errno
import os
import stat as st

from nuwa.script.commands.miscutils.capnames import (EFF, INH, PER, XATTR_CAPS_SZ_2, XATTR_CAPS_SZ_3,
                                                     XATTR_NAME_CAPS, CapSet, decode, encode, from_text,
                                                     to_text)
from nuwa.script.context import Defer, Invocation

SETCAP_USAGE = (
    "usage: setcap [-h] [-q] [-v] [-n <rootid>] (-r|-|<caps>) <filename> "
    "[ ... (-r|-|<capsN>) <filenameN> ]\n"
    "\n"
    " Note <filename> must be a regular (non-symlink) file.\n"
    " -r          remove capability from file\n"
    " -           read capability text from stdin\n"
    " <capsN>     cap_from_text(3) formatted file capability\n"
    " [ Note: capsh --suggest=\"something...\" might help you pick. ]\n"
    " -h          this message and exit status 0\n"
    " -q          quietly\n"
    " -v          validate supplied capability matches file\n"
    " -n <rootid> write a user namespace (!= 0) limited capability\n"
    " --license   display the license info\n"
)
GETCAP_USAGE = (
    "usage: getcap [-h] [-l] [-n] [-r] [-v] <filename> [<filename> ...]\n"
    "\n"
    "\tdisplays the capabilities on the queried file(s).\n"
)
_NOTE = ("NOTE: Under Linux, effective file capabilities must either be empty, or\n"
         "      exactly match the union of selected permitted and inheritable bits.\n")
#: setcap.c's MAXCAP: the most read_caps() takes from standard input
MAXCAP = 2048
_UID_INVALID = 0xFFFFFFFF  # (uid_t)-1: no kuid maps to it, the kernel refuses it as a rootid


def _s32(v: int) -> int:
    """A uid_t printed with ``%d``."""
    return v - (1 << 32) if v & 0x80000000 else v


def _pos_uint(text: str) -> int | None:
    """setcap.c ``pos_uint``: ``strtoul(text, &end, 0)`` must consume everything and be non-zero
    (text neither empty nor starting with ``-``); the value then becomes a uid_t."""
    if not text or text[0] == "-":
        return None
    s = text.lstrip(" \t\n\v\f\r")
    neg = s[:1] == "-"
    if s[:1] in "+-" and s:
        s = s[1:]
    if s[:2] in ("0x", "0X") and len(s) > 2 and s[2] in "0123456789abcdefABCDEF":
        digits, base, s = "0123456789abcdefABCDEF", 16, s[2:]
    elif s[:1] == "0":
        digits, base = "01234567", 8
    else:
        digits, base = "0123456789", 10
    if not s or any(c not in digits for c in s):
        return None  # no number, or text after it (*remains != '\0')
    value = min(int(s, base), (1 << 64) - 1)  # ERANGE gives ULONG_MAX
    if neg:
        value = -value % (1 << 64)
    return None if value == 0 else value & 0xFFFFFFFF


def _note_needed(caps: CapSet) -> bool:
    """setcap.c's explanation after a failure: scan the capabilities in order until one whose
    effective flag differs from permitted|inheritable; explain when an effective bit was seen."""
    somebits = False
    for n in range(64):
        per, inh, eff = caps.per >> n & 1, caps.inh >> n & 1, caps.eff >> n & 1
        somebits |= bool(eff)
        if (per | inh) != eff:
            return somebits
    return False


def _path(inv: Invocation, name: str) -> str:
    """The image path of an argument; an empty name is ENOENT, as for the kernel."""
    if not name:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name)
    return inv.path(name)


def _kernel_read(inv: Invocation, path: str) -> tuple[CapSet | None, int]:
    """``cap_get_file``: (the file's set, 0) or (None, errno). The value is what the kernel's
    ``cap_inode_getsecurity`` returns in the initial user namespace; ``getxattr`` follows
    symbolic links."""
    try:
        raw = inv.fs.getxattr(_path(inv, path), XATTR_NAME_CAPS)
    except OSError as e:
        return None, e.errno or errno.EIO
    caps = decode(raw)
    if caps is None:
        return None, -1  # malformed: the caller decides
    if len(raw) == XATTR_CAPS_SZ_3 and caps.rootid == _UID_INVALID:
        return None, errno.EOVERFLOW  # rootid_owns_currentns() fails for an unmapped root
    return caps, 0


def _read_stdin(inv: Invocation, state: dict, quiet: bool) -> bytes | None:
    """setcap.c ``read_caps``: the prompt, then what one ``read`` of at most MAXCAP bytes
    returns; None (usage) when nothing was read or the text starts with a newline."""
    if not quiet:
        inv.err("Please enter caps for file [empty line to end]:\n")
    data = bytes(inv.stdin)
    pos = state.get("stdin", 0)
    if len(data) - pos > MAXCAP:
        # the real read stops there and leaves the rest to the next reader of the same input,
        # which the interpreter's all-or-nothing standard input cannot express
        raise Defer(f"setcap -: standard input holds more than the {MAXCAP} bytes setcap reads")
    chunk = data[pos:pos + MAXCAP]
    state["stdin"] = pos + len(chunk)
    if not chunk or chunk[0] == 0x0A:
        return None
    return chunk


def _set_failed(inv: Invocation, fname: str, caps: CapSet | None, err: int) -> int:
    """setcap.c's messages after ``cap_set_file`` failed with ``err``."""
    if caps is not None and _note_needed(caps):
        inv.err(_NOTE)
    if err == errno.EINVAL:
        inv.err(f"Invalid file '{fname}' for capability operation\n")
    elif err == errno.ENODATA and caps is None:
        inv.err(f"File '{fname}' has no capablity to remove\n")  # sic
    else:
        inv.err(f"Failed to set capabilities on file '{fname}': {os.strerror(err)}\n")
    return 1


def _set_file(inv: Invocation, fname: str, caps: CapSet | None) -> int:
    """``cap_set_file`` (Debian's 2.66-4+deb12u3: the file is opened without following a last
    symbolic link and must be regular), then setcap's reaction; 0 or the exit status 1."""
    try:
        path = _path(inv, fname)
        s = inv.fs.lstat(path)
    except OSError as e:
        return _set_failed(inv, fname, caps, e.errno or errno.EIO)
    if st.S_ISFIFO(s.st_mode) or st.S_ISCHR(s.st_mode) or st.S_ISBLK(s.st_mode):
        raise Defer(f"setcap on {fname}: libcap opens the file for reading first, which blocks on a "
                    "FIFO and opens a device node (earlier 2.66 builds report an invalid file)")
    if not st.S_ISREG(s.st_mode):
        return _set_failed(inv, fname, caps, errno.EINVAL)
    try:
        if caps is None:
            inv.fs.removexattr(path, XATTR_NAME_CAPS, follow_symlinks=False)
        else:
            value = encode(caps)
            if value is None or caps.rootid == _UID_INVALID:
                return _set_failed(inv, fname, caps, errno.EINVAL)
            inv.fs.setxattr(path, XATTR_NAME_CAPS, value, 0, follow_symlinks=False)
    except OSError as e:
        return _set_failed(inv, fname, caps, e.errno or errno.EIO)
    return 0


def _verify(inv: Invocation, fname: str, caps: CapSet | None, rootid: int, quiet: bool) -> int:
    """setcap ``-v``: compare with the file's capabilities (none when it has none or cannot be
    read, as ``cap_init``); 0 when equal, else 1 with setcap's report."""
    want = caps if caps is not None else CapSet()
    on_file, _ = _kernel_read(inv, fname)
    on_file = on_file or CapSet()
    cmp = on_file.compare(want)
    if cmp or rootid != on_file.rootid:
        if not quiet:
            if rootid != on_file.rootid:
                inv.out(f"nsowner[got={_s32(on_file.rootid)}, want={_s32(rootid)}],")
            inv.out(f"{fname} differs in [{'p' if cmp & PER else ''}{'i' if cmp & INH else ''}"
                    f"{'e' if cmp & EFF else ''}]\n")
        return 1
    if not quiet:
        inv.out(f"{fname}: OK\n")
    return 0


def setcap(inv: Invocation) -> int:
    """The ``setcap`` model (libcap 2.66 ``progs/setcap.c``): arguments are read left to right,
    ``-q``, ``-v`` and ``-n ROOTID`` apply to the pairs after them, each pair is a capability
    text (``-r`` removes, ``-`` reads standard input) and a file; the first failure exits 1."""
    args = inv.argv[1:]
    if not args:
        inv.err(SETCAP_USAGE)
        return 1
    creds = getattr(inv.fs, "creds", None)
    if creds is not None and creds.uid != 0:
        raise Defer(f"setcap run as uid {creds.uid}: whether it may raise CAP_SETFCAP is the running kernel's answer")
    if creds is not None:
        # su/runuser's view of the image (loginutils.credfs) does not model extended attributes
        raise Defer(f"setcap run through su as {creds.user}: extended attributes in a user's view are not modelled")
    quiet = verify = False
    rootid = 0
    state: dict = {}
    k = 0
    while k < len(args):
        a = args[k]
        k += 1
        if a == "-q":
            quiet = True
            continue
        if a == "--license":
            inv.out(f"{a} see LICENSE file for details.\n"  # argv[0] has moved on to the option
                    "Copyright (c) 1997,2007-8,2020-21 Andrew G. Morgan <morgan@kernel.org>\n")
            return 0
        if a == "-h":
            inv.err(SETCAP_USAGE)
            return 0
        if a == "-v":
            verify = True
            continue
        if a == "-n":
            if k >= len(args):
                inv.err("usage: .. -n <rootid> .. - rootid!=0 file caps")
                return 1
            value = _pos_uint(args[k])
            if value is None:
                inv.err(f'bad ns rootid: want positive integer, got "{args[k]}"\n')
                return 1
            rootid = value
            k += 1
            continue
        caps: CapSet | None = None
        if a != "-r":
            if a == "-":
                text = _read_stdin(inv, state, quiet)
                if text is None:
                    inv.err(SETCAP_USAGE)
                    return 1
            else:
                text = a.encode("utf-8", "surrogateescape")
            caps = from_text(text)
            if caps is None:
                inv.err("fatal error: Invalid argument\n" + SETCAP_USAGE)
                return 1
            caps.rootid = rootid
        if k >= len(args):
            inv.err(SETCAP_USAGE)
            return 1
        fname = args[k]
        k += 1
        status = _verify(inv, fname, caps, rootid, quiet) if verify else _set_file(inv, fname, caps)
        if status:
            return status
    return 0


def _getopt(inv: Invocation) -> tuple[set[str], list[str]] | int:
    """glibc ``getopt(argc, argv, "rvhnl")``, with its argument permutation (none under
    ``POSIXLY_CORRECT``); ``-h`` and ``-l`` act where getopt meets them. Returns the flags and
    operands, or the exit status."""
    prog = inv.argv[0]
    flags: set[str] = set()
    operands: list[str] = []
    args = inv.argv[1:]
    k = 0
    while k < len(args):
        a = args[k]
        k += 1
        if a == "--":
            operands += args[k:]
            break
        if not a.startswith("-") or a == "-":
            operands.append(a)
            if "POSIXLY_CORRECT" in inv.env:
                operands += args[k:]
                break
            continue
        for c in a[1:]:
            if c == "h":
                inv.err(GETCAP_USAGE)
                return 0
            if c == "l":
                inv.out(f"{prog} see LICENSE file for details.\n"
                        "Copyright (c) 1997,2007,2021 Andrew G. Morgan <morgan@kernel.org>\n")
                return 0
            if c not in "rvn":
                inv.err(f"{prog}: invalid option -- '{c}'\n{GETCAP_USAGE}")
                return 1
            flags.add(c)
    return flags, operands


def _getcap_one(inv: Invocation, fname: str, regular: bool, verbose: bool, namespace: bool) -> None:
    """getcap.c ``do_getcap`` for one path."""
    if not regular:
        if verbose:
            inv.out(f"{fname} (Not a regular file)\n")
        return
    caps, err = _kernel_read(inv, fname)
    if err == -1:
        raise Defer(f"getcap: the security.capability value of {fname} is neither a revision 2 "
                    f"({XATTR_CAPS_SZ_2} bytes) nor a revision 3 ({XATTR_CAPS_SZ_3} bytes) value")
    if caps is None:
        if err not in (errno.ENODATA, errno.EOPNOTSUPP):
            inv.err(f"Failed to get capabilities of file '{fname}' ({os.strerror(err)})\n")
        elif verbose:
            inv.out(f"{fname}\n")
        return
    if namespace and caps.rootid not in (0, _UID_INVALID):
        inv.out(f"{fname} {to_text(caps)} [rootid={_s32(caps.rootid)}]\n")
    else:
        inv.out(f"{fname} {to_text(caps)}\n")


def _nftw(inv: Invocation, top: str, verbose: bool, namespace: bool) -> None:
    """glibc ``nftw(top, do_getcap, 20, FTW_PHYS)``: trailing slashes of ``top`` dropped, each
    directory reported before its entries, entries in the directory's own order, symbolic
    links not followed; everything that is not a directory or a link counts as a file."""
    while len(top) > 1 and top.endswith("/"):
        top = top[:-1]

    def walk(name: str) -> None:
        try:
            s = inv.fs.lstat(_path(inv, name))
        except OSError:
            _getcap_one(inv, name, False, verbose, namespace)  # FTW_NS
            return
        if not st.S_ISDIR(s.st_mode):
            _getcap_one(inv, name, not st.S_ISLNK(s.st_mode), verbose, namespace)
            return
        try:
            entries = inv.fs.readdir(inv.path(name))
        except OSError as e:
            if e.errno != errno.EACCES:
                raise Defer(f"getcap -r: reading directory {name} failed: {os.strerror(e.errno)}") from None
            _getcap_one(inv, name, False, verbose, namespace)  # FTW_DNR
            return
        _getcap_one(inv, name, False, verbose, namespace)  # FTW_D, before the entries
        prefix = name if name.endswith("/") else name + "/"
        for entry in entries:
            if entry not in (".", ".."):
                walk(prefix + entry)

    walk(top)


def getcap(inv: Invocation) -> int:
    """The ``getcap`` model (libcap 2.66 ``progs/getcap.c``): ``FILE cAPS`` for each regular
    file with capabilities (``-v``: every path, ``-r``: recursively, ``-n``: the rootid of a
    namespaced value); a missing file is reported on stderr and the status is still 0."""
    parsed = _getopt(inv)
    if isinstance(parsed, int):
        return parsed
    flags, operands = parsed
    if not operands:
        inv.err(GETCAP_USAGE)
        return 1
    verbose, namespace = "v" in flags, "n" in flags
    for fname in operands:
        try:
            s = inv.fs.lstat(_path(inv, fname))
        except OSError as e:
            inv.err(f"{fname} ({os.strerror(e.errno)})\n")
            continue
        if "r" in flags:
            _nftw(inv, fname, verbose, namespace)
        else:
            _getcap_one(inv, fname, st.S_ISREG(s.st_mode), verbose, namespace)
    return 0

