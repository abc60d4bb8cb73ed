"""Debian package versions: parsing and ordering exactly as dpkg does.

The algorithm is Debian Policy 5.6.12 ("Version"), as implemented by dpkg's
``lib/dpkg/parsehelp.c`` (``parseversion``) and ``lib/dpkg/version.c``
(``dpkg_version_compare``, ``verrevcmp``): ``[epoch:]upstream[-revision]``; epochs compare
numerically; upstream and revision compare by alternating non-digit runs (letters sort before
non-letters, ``~`` before everything including the end of the string) and digit runs
(numerically, leading zeros ignored).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from nuwa.errors import InvalidInputError

#: INT_MAX: dpkg stores the epoch in an int and refuses larger ones
_EPOCH_MAX = 2**31 - 1

_ALLOWED_UPSTREAM = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-+~:")
_ALLOWED_REVISION = set("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.+~")


@functools.total_ordering
@dataclass(frozen=True)
class Version:
    """A parsed version; ``str()`` gives dpkg's non-ambiguous spelling (``vdew_nonambig``)."""

    epoch: int
    upstream: str
    revision: str

    @classmethod
    def parse(cls, text: str, strict: bool = True) -> "Version":
        """Parse like dpkg's ``parseversion``; ``strict`` also refuses what dpkg only warns about.

        Errors (always): empty, embedded space, bad epoch, empty upstream or revision.
        Warnings made errors by ``strict``: upstream not starting with a digit, invalid characters.
        """
        err = _parse_problem(text, strict)
        if err:
            raise InvalidInputError(err, where=f"version {text!r}")
        return _parse_unchecked(text)

    def __str__(self) -> str:
        s = f"{self.epoch}:" if self.epoch else ""
        s += self.upstream
        if self.revision:
            s += "-" + self.revision
        return s

    def compare(self, other: "Version") -> int:
        """<0, 0 or >0 like ``dpkg_version_compare``."""
        return version_compare(self, other)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return version_compare(self, other) == 0

    def __lt__(self, other: "Version") -> bool:
        return version_compare(self, other) < 0

    def __hash__(self) -> int:  # equal versions ("1.0" and "0:1.0-0"...) must hash alike
        return hash((self.epoch, _canon(self.upstream), _canon(self.revision)))


def _canon(part: str) -> tuple:
    """A hashable key that is equal exactly when verrevcmp says equal."""
    key = []
    i = 0
    while i < len(part):
        j = i
        while j < len(part) and not part[j].isdigit():
            j += 1
        key.append(part[i:j])
        k = j
        while k < len(part) and part[k].isdigit():
            k += 1
        key.append(int(part[j:k] or "0"))
        i = k
    while len(key) >= 2 and key[-2] == "" and key[-1] == 0:
        key = key[:-2]
    return tuple(key)


def _parse_unchecked(text: str) -> Version:
    s = text.strip()
    epoch = 0
    if ":" in s:
        e, s = s.split(":", 1)
        epoch = int(e)
    if "-" in s:
        upstream, revision = s.rsplit("-", 1)
    else:
        upstream, revision = s, ""
    return Version(epoch, upstream, revision)


def version_problem(text: str) -> str | None:
    """What dpkg's ``parseversion`` calls an error in ``text`` (not its warnings), or None."""
    return _parse_problem(text, False)


def _parse_problem(text: str, strict: bool) -> str | None:
    """The message dpkg gives for ``text``, or None when it parses."""
    s = text.strip()
    if not s:
        return "version string is empty"
    if any(c.isspace() for c in s):
        return "version string has embedded spaces"
    if ":" in s:
        e, rest = s.split(":", 1)
        if not e:
            return "epoch in version is empty"
        if not e.isdigit() or not e.isascii():
            return "epoch in version is not number"
        if int(e) > _EPOCH_MAX:
            return "epoch in version is too big"
        if not rest:
            return "nothing after colon in version number"
        s = rest
    if "-" in s:
        upstream, revision = s.rsplit("-", 1)
        if not revision:
            return "revision number is empty"
    else:
        upstream, revision = s, ""
    if not upstream:
        return "version number is empty"
    if strict:
        if not upstream[0].isdigit() or not upstream[0].isascii():
            return "version number does not start with digit"
        if any(c not in _ALLOWED_UPSTREAM for c in upstream):
            return "invalid character in version number"
        if any(c not in _ALLOWED_REVISION for c in revision):
            return "invalid character in revision number"
    return None


def is_valid(text: str, strict: bool = True) -> bool:
    """True when ``text`` parses (``strict``: without dpkg warnings either)."""
    return _parse_problem(text, strict) is None


def _order(c: str) -> int:
    """dpkg's ``order()``: digits 0, letters their code, ``~`` -1, others code + 256."""
    if c.isdigit():
        return 0
    if c.isalpha() and c.isascii():
        return ord(c)
    if c == "~":
        return -1
    return ord(c) + 256


def verrevcmp(a: str, b: str) -> int:
    """Compare two upstream-version or revision strings (dpkg ``verrevcmp``)."""
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and not a[i].isdigit()) or (j < lb and not b[j].isdigit()):
            ac = _order(a[i]) if i < la else 0
            bc = _order(b[j]) if j < lb else 0
            if ac != bc:
                return ac - bc
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and j < lb and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i].isdigit():
            return 1
        if j < lb and b[j].isdigit():
            return -1
        if first_diff:
            return first_diff
    return 0


def version_compare(a: Version, b: Version) -> int:
    """dpkg_version_compare: epoch, then upstream, then revision."""
    if a.epoch != b.epoch:
        return -1 if a.epoch < b.epoch else 1
    r = verrevcmp(a.upstream, b.upstream)
    if r:
        return r
    return verrevcmp(a.revision, b.revision)


def compare_strings(a: str, b: str) -> int:
    """Compare two version strings (parsed leniently, as dpkg does for installed data)."""
    return version_compare(_parse_unchecked(a), _parse_unchecked(b))


#: relation spellings accepted by ``dpkg --compare-versions`` -> (test on cmp, empty-is-high)
_OPS = {
    "lt": (lambda r: r < 0, False), "le": (lambda r: r <= 0, False), "eq": (lambda r: r == 0, False),
    "ne": (lambda r: r != 0, False), "ge": (lambda r: r >= 0, False), "gt": (lambda r: r > 0, False),
    "<<": (lambda r: r < 0, False), "<=": (lambda r: r <= 0, False), "=": (lambda r: r == 0, False),
    ">=": (lambda r: r >= 0, False), ">>": (lambda r: r > 0, False),
    "<": (lambda r: r <= 0, False), ">": (lambda r: r >= 0, False),  # obsolete spellings
    "lt-nl": (lambda r: r < 0, True), "le-nl": (lambda r: r <= 0, True),
    "gt-nl": (lambda r: r > 0, True), "ge-nl": (lambda r: r >= 0, True),
}


def compare_versions(a: str, op: str, b: str) -> bool:
    """What ``dpkg --compare-versions A OP B`` answers (exit 0 is True).

    An empty version is "no version": lower than any other, or higher with the ``-nl`` ops.
    Raises InvalidInputError for an unknown operator or a version dpkg cannot parse.
    """
    if op not in _OPS:
        raise InvalidInputError(f"unknown operator {op!r}", where="dpkg --compare-versions")
    test, empty_high = _OPS[op]
    a = "" if a == "<unknown>" else a
    b = "" if b == "<unknown>" else b
    for v in (a, b):
        if v.strip():
            err = _parse_problem(v, strict=False)
            if err:
                raise InvalidInputError(err, where=f"version {v!r}")
    ea, eb = not a.strip(), not b.strip()
    if ea or eb:
        if ea and eb:
            r = 0
        elif ea:
            r = 1 if empty_high else -1
        else:
            r = -1 if empty_high else 1
    else:
        r = compare_strings(a, b)
    return test(r)


def dpkg_parseversion(text: str) -> tuple[Version | None, str, str]:
    """``parseversion`` exactly, for the command-line tools: ``(version, level, message)``.

    ``level`` is "" (clean), "warning" (dpkg warns and still uses the parsed version: bad
    characters, not starting with a digit) or "error" (no version; ``version`` is None).
    Blanks are spaces and tabs only (``c_isblank``); the epoch is read with ``strtol``.
    """
    s = text.lstrip(" \t")
    if not s:
        return None, "error", "version string is empty"
    end = 0
    while end < len(s) and s[end] not in " \t":
        end += 1
    if s[end:].strip(" \t"):
        return None, "error", "version string has embedded spaces"
    body = s[:end]
    epoch = 0
    colon = s.find(":")
    if colon >= 0:
        k = 0
        while k < len(s) and s[k] in " \t\n\v\f\r":
            k += 1
        sign = 1
        if k < len(s) and s[k] in "+-":
            sign = -1 if s[k] == "-" else 1
            k += 1
        j = k
        while j < len(s) and s[j] in "0123456789":
            j += 1
        if j == k:
            return None, "error", "epoch in version is empty"
        if j != colon:
            return None, "error", "epoch in version is not number"
        value = sign * int(s[k:j])
        if value < 0:
            return None, "error", "epoch in version is negative"
        if value > _EPOCH_MAX:
            return None, "error", "epoch in version is too big"
        if colon + 1 >= len(s):
            return None, "error", "nothing after colon in version number"
        epoch = value
        body = s[colon + 1:end] if colon + 1 < end else ""
    upstream, hy, revision = body.rpartition("-")
    if not hy:
        upstream, revision = body, ""
    elif not revision:
        return None, "error", "revision number is empty"
    v = Version(epoch, upstream, revision)
    if not upstream:
        return None, "error", "version number is empty"
    if not ("0" <= upstream[0] <= "9"):
        return v, "warning", "version number does not start with digit"
    if any(c not in _ALLOWED_UPSTREAM for c in upstream[1:]):
        return v, "warning", "invalid character in version number"
    if any(c not in _ALLOWED_REVISION for c in revision):
        return v, "warning", "invalid character in revision number"
    return v, "", ""
