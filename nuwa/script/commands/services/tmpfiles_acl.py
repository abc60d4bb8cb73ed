"""POSIX ACLs of ``a``, ``a+``, ``A``, ``A+`` tmpfiles.d lines, as systemd 252 sets them.

The chain reproduced here, step by step:

- **parsing** (``parse_acl`` in systemd's ``src/shared/acl-util.c``, called while the line is
  read, so its warning comes before any other check of the line): the argument is split at
  commas (empty pieces dropped); a piece starting ``d:`` or ``default:`` goes, without that
  prefix, to the default ACL, every other piece to the access ACL; each list is joined with
  commas and given to libacl's ``acl_from_text``. Any failure there (a user or group name the
  image does not know, a bad tag or permission) is warned about as ``Failed to parse ACL
  "ARG": Invalid argument. Ignoring`` and the line then sets nothing (status unchanged).
  Without ``+`` the mask is computed right away when named entries need one
  (``calc_acl_mask_if_needed``: only from the entries written in the line, before the base
  entries are added).
- **libacl's text form** (``acl_from_text``): entries ``tag:qualifier:perms`` separated by
  commas or white space; tags ``user``/``u``, ``group``/``g``, ``mask``/``m``, ``other``/``o``
  (the empty qualifier field of mask and other may be left out; white space may come before
  a tag and between a tag and its colon, nowhere else); an empty qualifier is the
  owner/owning group, a number is an id, a name is looked up in the image's passwd/group;
  perms are ``r w x -`` in any order, each letter at most once. Entries are kept sorted by tag
  and id, the order the kernel requires.
- **setting** (``fd_set_acls``/``path_set_acl``): symlinks are skipped; without ``+`` the
  parsed ACL is used, with ``+`` it is merged into the path's current one (``acls_for_file``:
  an entry of the same tag and id is replaced, others added; the mask is computed only if the
  result has none); missing owner/group/other entries come from the path's mode
  (``add_base_acls_if_needed``); default ACLs only on directories. ``A`` does this for the
  path and everything below it.
- **the kernel** (``posix_acl_update_mode``): an access ACL that says no more than the mode
  bits (no named entries, no mask) is not stored, only the mode changes; otherwise the mode's
  owner/group/other bits become the owner entry, the mask and the other entry. Values are
  stored in the VFS form (``struct posix_acl_xattr_header``: version 2, then ``tag, perm, id``
  little-endian, id ``0xffffffff`` for the unnamed entries); each filesystem backend stores
  that in its own format (the ext4 engine converts it).

Deferred: duplicate entries (libacl keeps them and the kernel's checks then decide), ``#``
comments inside the text, ids written in octal, hex or as negative numbers. The hardlink
refusal (``fs.protected_hardlinks`` turned off) does not apply: Debian boots with it on.
"""

from __future__ import annotations

import stat as _stat
import struct

from nuwa.script.context import Defer, Invocation

USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
UNDEFINED_ID = 0xFFFFFFFF
ACCESS, DEFAULT = "system.posix_acl_access", "system.posix_acl_default"
_WS = " \t\n\r\v\f"
_TAGS = (("user", USER_OBJ, USER), ("group", GROUP_OBJ, GROUP), ("mask", MASK, None), ("other", OTHER, None))

#: an ACL: a list of ``[tag, id, perm]`` entries (id None for the unnamed tags)
Acl = list


class BadAcl(Exception):
    """``acl_from_text`` failed (libacl sets EINVAL)."""


def from_text(text: str, db) -> Acl:
    """libacl's ``acl_from_text``: the entries of ``text``, names resolved with ``db``."""
    if "#" in text:
        raise Defer(f"systemd-tmpfiles: a '#' comment inside the ACL text {text!r} is not modelled")
    acl: Acl = []
    i, n = 0, len(text)
    while i < n:
        i = _entry(text, i, db, acl)
        i = _skip_ws(text, i)
        if i < n and text[i] == ",":
            i += 1
    return _sorted(acl, text)


def _skip_ws(s: str, i: int) -> int:
    while i < len(s) and s[i] in _WS:
        i += 1
    return i


def _tag(s: str, i: int, name: str) -> int | None:
    """``skip_tag_name``: the full name or its first letter, then ``:``, ``,`` or the end."""
    i = _skip_ws(s, i)
    if s.startswith(name, i):
        j = i + len(name)
    elif s[i:i + 1] == name[0]:
        j = i + 1
    else:
        return None
    j = _skip_ws(s, j)
    if j >= len(s) or s[j] in ":,":
        return j
    return None


def _token(s: str, i: int) -> tuple[str | None, int]:
    """``get_token``: up to ``:``, ``,`` or a line end; the ``:`` is consumed. White space is
    part of the token (``u: daemon:r`` names the user " daemon", which fails, as in libacl)."""
    j = i
    while j < len(s) and s[j] not in ":,\r\n":
        j += 1
    tok = s[i:j] or None
    if j < len(s) and s[j] == ":":
        j += 1
    return tok, j


def _entry(s: str, i: int, db, acl: Acl) -> int:
    """``parse_acl_entry``: one entry from ``s[i:]`` appended to ``acl``; the next index."""
    for name, obj, named in _TAGS:
        j = _tag(s, i, name)
        if j is None:
            continue
        if j < len(s) and s[j] == ":":
            j += 1
        if named is not None:
            tok, j = _token(s, j)
            if tok is None:
                tag, qid = obj, None
            else:
                tag, qid = named, _qualifier(tok, db, name)
        else:
            j = _skip_ws(s, j)
            if j < len(s) and s[j] == ":":
                j += 1
            tag, qid = obj, None
        perm = 0
        while j < len(s) and s[j] in "rwx-":
            bit = {"r": 4, "w": 2, "x": 1, "-": 0}[s[j]]
            if perm & bit:
                raise BadAcl(s)
            perm |= bit
            j += 1
        acl.append([tag, qid, perm])
        return j
    raise BadAcl(s)


def _qualifier(tok: str, db, kind: str) -> int:
    """``get_uid``/``get_gid``: a number is the id, anything else a name of the image."""
    if tok.isdigit() and tok.isascii():
        if len(tok) > 1 and tok[0] == "0":
            raise Defer(f"systemd-tmpfiles: ACL id {tok!r} (read as octal by libacl) is not modelled")
        return int(tok)
    if tok[:1] in "-+" or tok.lower().startswith("0x"):
        raise Defer(f"systemd-tmpfiles: ACL id {tok!r} is not modelled")
    row = db.user(tok) if kind == "user" else db.grp(tok)
    if row is None:
        raise BadAcl(tok)
    return int(row[2])


def _sorted(acl: Acl, text: str) -> Acl:
    keys = [(t, q) for t, q, _p in acl]
    if len(set(keys)) != len(keys):
        raise Defer(f"systemd-tmpfiles: duplicate entries in the ACL {text!r} are not modelled")
    return sorted(acl, key=lambda e: (e[0], -1 if e[1] is None else e[1]))


def parse(text: str, db, want_mask: bool) -> tuple[Acl | None, Acl | None]:
    """systemd's ``parse_acl``: (access ACL, default ACL), each None when the text has none."""
    access, default = [], []
    for piece in (p for p in text.split(",") if p):
        for pre in ("default:", "d:"):
            if piece.startswith(pre):
                default.append(piece[len(pre):])
                break
        else:
            access.append(piece)
    out = []
    for part in (access, default):
        if not part:
            out.append(None)
            continue
        acl = from_text(",".join(part), db)
        out.append(calc_mask_if_needed(acl) if want_mask else acl)
    return out[0], out[1]


def calc_mask_if_needed(acl: Acl) -> Acl:
    """``calc_acl_mask_if_needed``: when named entries exist and no mask, add the mask
    ``acl_calc_mask`` computes (the union of the group-class entries' permissions)."""
    tags = [e[0] for e in acl]
    if MASK in tags or not any(t in (USER, GROUP) for t in tags):
        return acl
    perm = 0
    for t, _q, p in acl:
        if t in (GROUP_OBJ, USER, GROUP):
            perm |= p
    return _sorted(acl + [[MASK, None, perm]], "")


def from_mode(mode: int) -> Acl:
    """``acl_from_mode``: the three base entries of a mode."""
    return [[USER_OBJ, None, (mode >> 6) & 7], [GROUP_OBJ, None, (mode >> 3) & 7], [OTHER, None, mode & 7]]


def add_base(acl: Acl, mode: int) -> Acl:
    """``add_base_acls_if_needed``: owner, group and other entries the ACL lacks, from the mode."""
    have = {e[0] for e in acl}
    extra = [e for e in from_mode(mode) if e[0] not in have]
    return _sorted(acl + extra, "") if extra else acl


def merge(old: Acl, new: Acl) -> Acl:
    """``acls_for_file``: ``new``'s entries replace those of the same tag and id in ``old``,
    the others are added; then the mask if the result needs one and has none."""
    out = [list(e) for e in old]
    for t, q, p in new:
        hit = next((e for e in out if e[0] == t and e[1] == q), None)
        if hit is None:
            out.append([t, q, p])
        else:
            hit[2] = p
    return calc_mask_if_needed(_sorted(out, ""))


def encode(acl: Acl) -> bytes:
    """The VFS xattr value (``posix_acl_xattr_header`` version 2 and its entries)."""
    return struct.pack("<I", 2) + b"".join(
        struct.pack("<HHI", t, p, UNDEFINED_ID if q is None else q) for t, q, p in acl)


def decode(value: bytes, where: str) -> Acl:
    """The entries of a VFS xattr value."""
    if len(value) < 4 or (len(value) - 4) % 8 or struct.unpack_from("<I", value)[0] != 2:
        raise Defer(f"systemd-tmpfiles: the ACL of {where} is not in the version-2 VFS form")
    out = []
    for off in range(4, len(value), 8):
        t, p, q = struct.unpack_from("<HHI", value, off)
        out.append([t, q if t in (USER, GROUP) else None, p])
    return out


def _current(inv: Invocation, path: str, name: str, mode: int) -> Acl:
    """``acl_get_file``: the stored ACL; without one the mode's entries (access) or none
    (default)."""
    try:
        return decode(inv.fs.getxattr(path, name), path)
    except OSError:
        return from_mode(mode) if name == ACCESS else []


def set_acls(inv: Invocation, access: Acl | None, default: Acl | None, merge_mode: bool, path: str) -> None:
    """``fd_set_acls`` on one existing path: the access ACL, then (directories) the default."""
    st = inv.fs.lstat(path)
    if _stat.S_ISLNK(st.st_mode):
        return  # "Skipping ACL fix for symlink"
    if access is not None:
        acl = merge(_current(inv, path, ACCESS, st.st_mode), access) if merge_mode else access
        _store_access(inv, path, add_base(acl, st.st_mode), st.st_mode)
    if default is not None and _stat.S_ISDIR(st.st_mode):
        mode = inv.fs.lstat(path).st_mode
        acl = merge(_current(inv, path, DEFAULT, mode), default) if merge_mode else default
        inv.fs.setxattr(path, DEFAULT, encode(add_base(acl, mode)))


def _store_access(inv: Invocation, path: str, acl: Acl, mode: int) -> None:
    """``setxattr`` of an access ACL with the kernel's ``posix_acl_update_mode``: an ACL
    equivalent to the mode is dropped; the mode's permission bits follow the ACL."""
    perms = {t: p for t, _q, p in acl if t in (USER_OBJ, GROUP_OBJ, MASK, OTHER)}
    extended = any(t in (USER, GROUP, MASK) for t, _q, _p in acl)
    group = perms[MASK] if MASK in perms else perms[GROUP_OBJ]
    new = (mode & 0o7000) | perms[USER_OBJ] << 6 | group << 3 | perms[OTHER]
    if extended:
        inv.fs.setxattr(path, ACCESS, encode(acl))
    else:
        try:
            inv.fs.removexattr(path, ACCESS)
        except OSError:
            pass  # none stored: nothing to drop
    if new != _stat.S_IMODE(mode):
        inv.fs.chmod(path, new)
