"""File-mode expressions as chmod, mkdir -m and install -m read them.

Pure functions mirroring gnulib's ``modechange.c``: :func:`compile_mode` turns ``755``,
``u+x,go-w`` or ``a=rX`` into a list of changes; :func:`adjust_mode` applies them to an
existing mode. The subtle parts kept from gnulib: without a *who* letter the umask limits
``+``/``-``/``=``; ``X`` adds execute only for directories or files already executable by
someone; ``g=u`` copies bits; a directory keeps its set-user-ID and set-group-ID bits unless
the expression names them (numeric modes of fewer than five digits do not clear them).
"""

from __future__ import annotations

from dataclasses import dataclass

S_ISUID, S_ISGID, S_ISVTX = 0o4000, 0o2000, 0o1000
S_IRWXU, S_IRWXG, S_IRWXO = 0o700, 0o070, 0o007
S_IRWXUGO = 0o777
CHMOD_MODE_BITS = 0o7777

_READ, _WRITE, _EXEC = 0o444, 0o222, 0o111

#: gnulib's change kinds: ordinary bits, "X", or a copy of u/g/o's existing bits
ORDINARY, X_IF_ANY_X, COPY_EXISTING = 1, 2, 3


class ModeError(ValueError):
    """The mode expression is not valid (coreutils: "invalid mode")."""


@dataclass(frozen=True)
class Change:
    """One clause of a mode expression."""

    op: str  # '=', '+', '-'
    flag: int
    affected: int  # bits the who-letters select (0: none given)
    value: int
    mentioned: int  # bits the expression names (governs directory set-id preservation)


def compile_mode(text: str) -> list[Change]:
    """Parse a numeric or symbolic mode into changes (raises ModeError)."""
    if text and all(c in "01234567" for c in text):
        n = int(text, 8)
        if n > CHMOD_MODE_BITS:
            raise ModeError(text)
        if len(text) < 5:
            mentioned = (n & (S_ISUID | S_ISGID)) | S_ISVTX | S_IRWXUGO
        else:
            mentioned = CHMOD_MODE_BITS
        return [Change("=", ORDINARY, CHMOD_MODE_BITS, n, mentioned)]
    if text and text[0].isdigit():
        raise ModeError(text)
    changes: list[Change] = []
    i, n = 0, len(text)
    while True:
        affected = 0
        while i < n and text[i] in "ugoa":
            affected |= {"u": S_ISUID | S_IRWXU, "g": S_ISGID | S_IRWXG, "o": S_ISVTX | S_IRWXO,
                         "a": CHMOD_MODE_BITS}[text[i]]
            i += 1
        if i >= n or text[i] not in "=+-":
            raise ModeError(text)
        while i < n and text[i] in "=+-":
            op = text[i]
            i += 1
            value, flag = 0, ORDINARY
            if i < n and text[i] in "ugo":
                value = {"u": S_IRWXU, "g": S_IRWXG, "o": S_IRWXO}[text[i]]
                flag = COPY_EXISTING
                i += 1
            else:
                while i < n and text[i] in "rwxXst":
                    c = text[i]
                    if c == "r":
                        value |= _READ
                    elif c == "w":
                        value |= _WRITE
                    elif c == "x":
                        value |= _EXEC
                    elif c == "X":
                        flag = X_IF_ANY_X
                    elif c == "s":
                        value |= S_ISUID | S_ISGID
                    else:
                        value |= S_ISVTX
                    i += 1
            mentioned = affected if affected else CHMOD_MODE_BITS
            changes.append(Change(op, flag, affected, value, mentioned))
        if i >= n:
            break
        if text[i] != ",":
            raise ModeError(text)
        i += 1
    return changes


def adjust_mode(old: int, is_dir: bool, umask: int, changes: list[Change]) -> int:
    """Apply ``changes`` to permission bits ``old`` (gnulib ``mode_adjust``)."""
    new = old & CHMOD_MODE_BITS
    for ch in changes:
        omit = (S_ISUID | S_ISGID if is_dir else 0) & ~ch.mentioned
        value = ch.value
        if ch.flag == COPY_EXISTING:
            value &= new
            value |= ((_READ if value & _READ else 0) | (_WRITE if value & _WRITE else 0)
                      | (_EXEC if value & _EXEC else 0))
        elif ch.flag == X_IF_ANY_X:
            if (new & _EXEC) or is_dir:
                value |= _EXEC
        value &= (ch.affected if ch.affected else ~umask) & ~omit
        if ch.op == "=":
            preserved = (~ch.affected if ch.affected else 0) | omit
            new = (new & preserved) | value
        elif ch.op == "+":
            new |= value
        else:
            new &= ~value
    return new & CHMOD_MODE_BITS
