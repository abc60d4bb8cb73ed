"""Capability sets as libcap 2.66 spells them (Debian 12's libcap2), and their file xattr.

- the name table: Linux 6.1's capabilities in libcap's order (``<linux/capability.h>``,
  ``CAP_CHOWN`` 0 .. ``CAP_CHECKPOINT_RESTORE`` 40, libcap's ``_cap_names``);
- :func:`from_text`: ``cap_from_text(3)`` (libcap ``cap_text.c``), the clause grammar
  ``[caps]op flags[op flags...]`` with its exact acceptance rules;
- :func:`to_text`: ``cap_to_text(3)``, the canonical form ``getcap`` prints;
- the on-disk value of ``security.capability``: ``struct vfs_ns_cap_data`` of
  ``<linux/capability.h>`` (magic_etc, then per 32-bit word permitted and inheritable, then
  the rootid of revision 3), little-endian on disk.

``cap_max_bits()`` is a property of the running kernel that libcap probes at start-up
(``cap_alloc.c``: a binary search over ``PR_CAPBSET_READ``); the program runs on the guest,
whose Debian 12 kernel (6.1) knows 41 capabilities, so it is fixed here at 41. It decides
what ``all`` and a clause without names mean, and which bits ``cap_to_text`` names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

#: libcap's _cap_names, index = capability number (Linux 6.1 / libcap 2.66)
NAMES = (
    "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid",
    "cap_kill", "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable",
    "cap_net_bind_service", "cap_net_broadcast", "cap_net_admin", "cap_net_raw",
    "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module", "cap_sys_rawio", "cap_sys_chroot",
    "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot", "cap_sys_nice",
    "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
    "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override",
    "cap_mac_admin", "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read",
    "cap_perfmon", "cap_bpf", "cap_checkpoint_restore",
)
_INDEX = {n.encode(): i for i, n in enumerate(NAMES)}

#: cap_max_bits() on the guest's kernel (see the module note)
CAP_MAX_BITS = 41
#: __CAP_MAXBITS: libcap's sets hold two 32-bit words (_LINUX_CAPABILITY_U32S_3)
MAXBITS = 64
_ALL = (1 << CAP_MAX_BITS) - 1  # forceall(): every bit the kernel names
_WORD = 0xFFFFFFFF

#: LIBCAP_EFF, LIBCAP_PER, LIBCAP_INH (1 << CAP_EFFECTIVE/PERMITTED/INHERITABLE)
EFF, PER, INH = 1, 2, 4

# struct vfs_ns_cap_data (<linux/capability.h>): le32 magic_etc; {le32 permitted, inheritable}
# data[VFS_CAP_U32]; le32 rootid (revision 3 only)
VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
VFS_CAP_REVISION_2 = 0x02000000
VFS_CAP_REVISION_3 = 0x03000000
XATTR_CAPS_SZ_2 = 20
XATTR_CAPS_SZ_3 = 24
XATTR_NAME_CAPS = "security.capability"
_V2 = struct.Struct("<5I")
_V3 = struct.Struct("<6I")


@dataclass
class CapSet:
    """A libcap ``cap_t``: three 64-bit sets and the namespace root id of file capabilities."""

    eff: int = 0
    per: int = 0
    inh: int = 0
    rootid: int = 0

    def flags(self, n: int) -> int:
        """``getstateflags``: which of the three sets hold capability ``n``."""
        bit = 1 << n
        return ((EFF if self.eff & bit else 0) | (PER if self.per & bit else 0)
                | (INH if self.inh & bit else 0))

    def compare(self, other: "CapSet") -> int:
        """``cap_compare``: the LIBCAP_* bits of the sets that differ (rootid not included)."""
        return ((EFF if self.eff != other.eff else 0) | (INH if self.inh != other.inh else 0)
                | (PER if self.per != other.per else 0))


def _isspace(c: int) -> bool:
    return c in b" \t\n\v\f\r"


def _isalpha(c: int) -> bool:
    return 65 <= c <= 90 or 97 <= c <= 122


def _isdigit(c: int) -> bool:
    return 48 <= c <= 57


def _isalnum(c: int) -> bool:
    return _isalpha(c) or _isdigit(c)


def _namcmp(s: bytes, i: int, nam: bytes) -> int | None:
    """libcap ``namcmp``: the end of ``nam`` matched case-insensitively at ``i``, or None
    when it does not match or is followed by more of a name."""
    for k, c in enumerate(nam):
        if i + k >= len(s) or s[i + k] | 0x20 != c or not _isalpha(s[i + k]):
            return None
    j = i + len(nam)
    if j < len(s) and (_isalnum(s[j]) or s[j] == 0x5F):
        return None
    return j


def _strtoul(s: bytes, i: int) -> tuple[int, int]:
    """glibc ``strtoul(s + i, &end, 0)`` where ``s[i]`` is a digit: (value, end)."""
    if s[i:i + 2] in (b"0x", b"0X") and i + 2 < len(s) and chr(s[i + 2]) in "0123456789abcdefABCDEF":
        j, digits, base = i + 2, "0123456789abcdefABCDEF", 16
    elif s[i] == 0x30:
        j, digits, base = i, "01234567", 8
    else:
        j, digits, base = i, "0123456789", 10
    k = j
    while k < len(s) and chr(s[k]) in digits:
        k += 1
    return int(s[j:k] or b"0", base), k


def _lookupname(s: bytes, i: int) -> tuple[int, int] | None:
    """libcap ``lookupname`` as Debian builds it (with gperf): a number (strtoul base 0, below
    __CAP_MAXBITS), or the longest run of letters and ``_`` looked up case-insensitively."""
    if _isdigit(s[i]):
        n, end = _strtoul(s, i)
        return None if n >= MAXBITS else (n, end)
    j = i
    while j < len(s) and (_isalpha(s[j]) or s[j] == 0x5F):
        j += 1
    n = _INDEX.get(s[i:j].lower())
    return None if n is None else (n, j)


def from_text(text: bytes) -> CapSet | None:
    """``cap_from_text``: the set ``text`` describes, or None where libcap fails (EINVAL).

    A transcription of libcap 2.66's parser, character for character: each clause is an
    optional comma-separated list of names or numbers (``all`` = every kernel bit; no list = all
    of them too), then an operator ``=``, ``+`` or ``-`` (``=+``/``=-`` after a list) and flags
    from ``eip``, more ``+``/``-`` flag groups after a list; clauses are separated by white space.
    """
    s = text.split(b"\0", 1)[0]
    end = len(s)
    res = CapSet()

    def ch(k: int) -> int:
        return s[k] if k < end else 0

    i = 0
    while True:
        while ch(i) and _isspace(ch(i)):
            i += 1
        if not ch(i):
            return res
        caps, flags, listed = 0, 0, False
        if _isalnum(ch(i)) or ch(i) == 0x5F:
            while True:
                j = _namcmp(s, i, b"all")
                if j is not None:
                    i, caps = i + 3, caps | _ALL
                else:
                    found = _lookupname(s, i)
                    if found is None:
                        return None
                    caps |= 1 << found[0]
                    i = found[1]
                if ch(i) != 0x2C:  # ','
                    break
                i += 1
                if not (_isalnum(ch(i)) or ch(i) == 0x5F):
                    return None
            listed = True
        elif ch(i) in (0x2B, 0x2D):  # a lone + or - needs a list of capabilities
            return None
        else:
            caps = _ALL
        op = chr(ch(i))
        i += 1
        if op == "=" and ch(i) in (0x2B, 0x2D):
            if not listed:
                return None
            op = "P" if ch(i) == 0x2B else "M"
            i += 1
        elif op not in "+-=":
            return None
        while True:
            c = ch(i)
            if c and not _isspace(c):
                i += 1
                if c == 0x65:
                    flags |= EFF
                elif c == 0x69:
                    flags |= INH
                elif c == 0x70:
                    flags |= PER
                else:
                    return None
            elif op != "=":
                return None
            if op in "=PM":
                res.eff &= ~caps
                res.per &= ~caps
                res.inh &= ~caps
            if op in "=P+":
                res.eff |= caps if flags & EFF else 0
                res.per |= caps if flags & PER else 0
                res.inh |= caps if flags & INH else 0
            else:
                res.eff &= ~caps if flags & EFF else -1
                res.per &= ~caps if flags & PER else -1
                res.inh &= ~caps if flags & INH else -1
            if ch(i) in (0x2B, 0x2D):
                if not listed:
                    return None
                flags = 0
                op = chr(ch(i))
                i += 1
                if not _isalpha(ch(i)):
                    return None
            if not (ch(i) and not _isspace(ch(i))):
                break


def _flag_letters(f: int) -> str:
    return ("e" if f & EFF else "") + ("i" if f & INH else "") + ("p" if f & PER else "")


def _name(n: int) -> str:
    """``cap_to_name``: the name of a known capability, else its number."""
    return NAMES[n] if n < len(NAMES) else str(n)


def to_text(caps: CapSet) -> str:
    """``cap_to_text``: the most common flag combination among the kernel's bits becomes the
    leading ``=...`` clause, then one clause per other combination (highest first) naming its
    capabilities with ``+``/``-`` adjustments; bits beyond the kernel's are listed by number."""
    histo = [0] * 8
    for n in range(CAP_MAX_BITS):
        histo[caps.flags(n)] += 1
    m = 7
    for t in range(6, -1, -1):
        if histo[t] >= histo[m]:
            m = t  # ties prefer the lower combination (m = 0: nothing set)
    buf = "=" + _flag_letters(m)
    base = 0
    for t in range(7, -1, -1):
        if t == m or not histo[t]:
            continue
        buf += " " + ",".join(_name(n) for n in range(CAP_MAX_BITS) if caps.flags(n) == t)
        raised = t & ~m
        if raised:
            op = "+"
            if buf[base:base + 2] == "= ":
                base, op = base + 2, "="  # "= foo+eip" is shortened to "foo=eip"
            buf += op + _flag_letters(raised)
        lowered = ~t & m
        if lowered:
            buf += "-" + _flag_letters(lowered)
    for t in range(7, 0, -1):
        names = [_name(n) for n in range(CAP_MAX_BITS, MAXBITS) if caps.flags(n) == t]
        if names:
            buf += " " + ",".join(names) + "+" + _flag_letters(t)
    return buf[base:]


def encode(caps: CapSet) -> bytes | None:
    """libcap ``_fcaps_save``: the xattr value (revision 2, or 3 with a rootid), or None
    (EINVAL) when the effective set is neither empty nor exactly permitted | inheritable."""
    if caps.eff and ~caps.eff & (caps.per | caps.inh):
        return None
    magic = VFS_CAP_REVISION_3 if caps.rootid else VFS_CAP_REVISION_2
    if caps.eff:
        magic |= VFS_CAP_FLAGS_EFFECTIVE
    words = (magic, caps.per & _WORD, caps.inh & _WORD, caps.per >> 32 & _WORD, caps.inh >> 32 & _WORD)
    return _V3.pack(*words, caps.rootid) if caps.rootid else _V2.pack(*words)


def decode(value: bytes) -> CapSet | None:
    """libcap ``_fcaps_load`` of a revision 2 or 3 value: the effective set is permitted |
    inheritable when the effective flag is set; None for anything else."""
    if len(value) == XATTR_CAPS_SZ_2 and value[3] == 2:
        magic, p0, i0, p1, i1 = _V2.unpack(value)
        rootid = 0
    elif len(value) == XATTR_CAPS_SZ_3 and value[3] == 3:
        magic, p0, i0, p1, i1, rootid = _V3.unpack(value)
    else:
        return None
    per, inh = p0 | p1 << 32, i0 | i1 << 32
    return CapSet(eff=(per | inh) if magic & VFS_CAP_FLAGS_EFFECTIVE else 0, per=per, inh=inh, rootid=rootid)
