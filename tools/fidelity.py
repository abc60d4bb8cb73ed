#!/usr/bin/env python3
"""The "apt's result" judge: does a patched tree equal the one the real tools left?

    python3 tools/fidelity.py REFERENCE CANDIDATE [--json] [--allow FILE]

REFERENCE and CANDIDATE are each a host directory (a chroot where real ``apt-get upgrade``
ran, a tree extracted from an image) or an image file (qcow2 or raw, read with Nuwa's own
reader). They are compared path by path -- type, permission bits, owner, group, size, content
hash, symlink target, xattrs, device number and hard-link group -- and then on apt's and
dpkg's state read as apt and dpkg read it: ``/var/lib/dpkg/status`` stanza by stanza and
``/var/lib/apt/extended_states`` (auto-installed marks) package by package.

Every difference is printed. Each is *explained* when a row of the allow list (the table under
"Expected differences" in ``docs/fidelity.md``, or ``--allow FILE`` in the same form) matches
it: the path pattern, the kind of difference and the fields, and gives the reason. Exit status:
0 when every difference is explained, 1 when one is not, 2 on bad input.

Why the file-level diff of the two state files is not enough: a difference in one package's
stanza would show as "sha256 differs" on the whole status file; per stanza, the report names
the package and the fields.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import sys
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from treefacts import FIELDS, Tree  # noqa: E402

DOC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "fidelity.md")
STATUS = "/var/lib/dpkg/status"
EXTENDED_STATES = "/var/lib/apt/extended_states"
#: logs whose lines start with a timestamp: compared line by line with the times left out,
#: so the judge sees what dpkg did (and in which order), not when
TIMED_LOGS = ("/var/log/dpkg.log", "/var/log/alternatives.log")
_TIME = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d:? ?")
#: the kinds of difference an allow-list row can name
KINDS = ("missing", "extra", "changed", "stanza-missing", "stanza-extra", "stanza-changed")


@dataclass
class Difference:
    """One difference: ``kind`` is ``missing`` (only in the reference), ``extra`` (only in the
    candidate), ``changed`` (``fields`` say which), or ``stanza-*`` for a package's state
    (``path`` is ``/var/lib/dpkg/status#NAME:ARCH`` or ``/var/lib/apt/extended_states#NAME:ARCH``)."""

    path: str
    kind: str
    fields: list[str] = field(default_factory=list)
    ref: dict = field(default_factory=dict)
    cand: dict = field(default_factory=dict)
    reason: str | None = None  # the allow-list reason, when explained

    def line(self) -> str:
        """One human line: ``[ok|FAIL] kind path fields (ref -> cand) -- reason``."""
        mark = "ok  " if self.reason else "FAIL"
        detail = ""
        if self.fields:
            detail = " " + ", ".join(f"{f} {_short(f, self.ref.get(f))} -> {_short(f, self.cand.get(f))}"
                                     for f in self.fields)
        why = f"  -- {self.reason}" if self.reason else ""
        return f"{mark} {self.kind:<14} {self.path}{detail}{why}"

    def to_json(self) -> dict:
        """The difference as a JSON object (bytes as hex)."""
        return {"path": self.path, "kind": self.kind, "fields": self.fields, "reference": _jsonable(self.ref),
                "candidate": _jsonable(self.cand), "explained": self.reason is not None, "reason": self.reason}


def _jsonable(d: dict) -> dict:
    def conv(v):
        if isinstance(v, bytes):
            return v.hex()
        if isinstance(v, (tuple, list)):
            return [conv(x) for x in v]
        return v
    return {k: conv(v) for k, v in d.items()}


def _short(name: str, v) -> str:
    if name == "mode" and isinstance(v, int):
        return f"{v:04o}"
    s = repr(v)
    return s if len(s) <= 60 else s[:57] + "..."


# ---- the trees -------------------------------------------------------------------------------
def compare_trees(ref: Tree, cand: Tree, semantic: tuple[str, ...] = (STATUS, EXTENDED_STATES)) -> list[Difference]:
    """Every path-level difference between the two trees (sorted by path). The ``semantic``
    files' contents are left to :func:`compare_states` (their type, mode and owner still count)."""
    a, b = ref.walk(), cand.walk()
    out = []
    for p in sorted(a.keys() | b.keys()):
        if p not in b:
            out.append(Difference(p, "missing", ref=_facts_dict(a[p])))
            continue
        if p not in a:
            out.append(Difference(p, "extra", cand=_facts_dict(b[p])))
            continue
        fa, fb = a[p], b[p]
        changed = [f for f in FIELDS if f not in ("sha256",) and getattr(fa, f) != getattr(fb, f)]
        if p in semantic:
            changed = [f for f in changed if f != "size"]
        ra, rb = {f: getattr(fa, f) for f in changed}, {f: getattr(fb, f) for f in changed}
        if fa.type == fb.type == "file" and p in TIMED_LOGS:
            changed = [f for f in changed if f != "size"]
            la, lb = _untimed(ref.read_bytes(p)), _untimed(cand.read_bytes(p))
            if la != lb:
                i = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y), min(len(la), len(lb)))
                # the same actions in another order or grouping into dpkg calls ("startup" lines)
                # is a weaker difference than an action done on one side only
                kind = "lines-order" if _actions(la) == _actions(lb) else "lines"
                changed.append(kind)
                ra[kind] = f"line {i + 1} of {len(la)}: " + (la[i].decode(errors="replace") if i < len(la) else "(end)")
                rb[kind] = f"line {i + 1} of {len(lb)}: " + (lb[i].decode(errors="replace") if i < len(lb) else "(end)")
        elif fa.type == fb.type == "file" and fa.size == fb.size and p not in semantic:
            ha, hb = ref.sha256(p), cand.sha256(p)
            if ha != hb:
                changed.insert(changed.index("target") if "target" in changed else len(changed), "sha256")
                ra["sha256"], rb["sha256"] = ha, hb
        if changed:
            out.append(Difference(p, "changed", [f for f in (*FIELDS, "lines", "lines-order") if f in changed], ra, rb))
    return out


def _untimed(data: bytes | None) -> list[bytes]:
    """A log's lines with the first timestamp of each left out."""
    return [_TIME.sub(b"", ln, count=1) for ln in (data or b"").splitlines()]


def _actions(lines: list[bytes]) -> list[bytes]:
    """A log's lines but dpkg's ``startup`` ones (one per dpkg call), sorted."""
    return sorted(ln for ln in lines if not ln.startswith(b"startup "))


def _facts_dict(f) -> dict:
    return {k: getattr(f, k) for k in FIELDS if k != "sha256"}


# ---- apt's and dpkg's state ------------------------------------------------------------------
def stanzas(data: bytes | None, where: str) -> tuple[list[str], dict[str, dict[str, str]]]:
    """A deb822 file (dpkg status, extended_states) as (keys in file order, key -> fields).

    The key is ``Package:Architecture`` (``Package`` alone when there is no Architecture
    field, as in extended_states files of old apt); field names keep their case, continuation
    lines stay part of the value."""
    order: list[str] = []
    out: dict[str, dict[str, str]] = {}
    if data is None:
        return order, out
    text = data.decode("utf-8", "surrogateescape")
    for para in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = None
        for ln in para.split("\n"):
            if not ln.strip():
                continue
            if ln[:1] in (" ", "\t") and last is not None:
                fields[last] += "\n" + ln
            elif ":" in ln:
                last, _, v = ln.partition(":")
                fields[last] = v.strip()
            else:
                raise ValueError(f"{where}: a line that is neither a field nor a continuation: {ln[:60]!r}")
        if fields:
            key = fields.get("Package", "?") + (":" + fields["Architecture"] if "Architecture" in fields else "")
            order.append(key)
            out[key] = fields
    return order, out


def compare_states(ref: Tree, cand: Tree, files: tuple[str, ...] = (STATUS, EXTENDED_STATES)) -> list[Difference]:
    """Stanza-by-stanza differences of dpkg's status and apt's extended_states; a stanza order
    that differs (dpkg writes its status sorted) is one ``changed`` difference on the file."""
    out = []
    for path in files:
        da, db = ref.read_bytes(path), cand.read_bytes(path)
        oa, sa = stanzas(da, f"reference {path}")
        ob, sb = stanzas(db, f"candidate {path}")
        before = len(out)
        for key in sorted(sa.keys() | sb.keys()):
            where = f"{path}#{key}"
            if key not in sb:
                out.append(Difference(where, "stanza-missing", ref=sa[key]))
            elif key not in sa:
                out.append(Difference(where, "stanza-extra", cand=sb[key]))
            elif sa[key] != sb[key]:
                names = [n for n in dict.fromkeys([*sa[key], *sb[key]]) if sa[key].get(n) != sb[key].get(n)]
                if not names:  # same fields and values, another order
                    names = ["field-order"]
                    out.append(Difference(where, "stanza-changed", names, {names[0]: list(sa[key])},
                                          {names[0]: list(sb[key])}))
                else:
                    out.append(Difference(where, "stanza-changed", names, {n: sa[key].get(n) for n in names},
                                          {n: sb[key].get(n) for n in names}))
        common_a = [k for k in oa if k in sb]
        common_b = [k for k in ob if k in sa]
        if common_a != common_b:
            first = next(i for i, (x, y) in enumerate(zip(common_a, common_b)) if x != y)
            out.append(Difference(path, "changed", ["stanza-order"], {"stanza-order": common_a[first:first + 3]},
                                  {"stanza-order": common_b[first:first + 3]}))
        if len(out) == before and da is not None and db is not None and da != db:
            # the same stanzas in the same order, written otherwise (separators, spacing)
            out.append(Difference(path, "changed", ["bytes"], {"bytes": len(da)}, {"bytes": len(db)}))
    return out


# ---- the allow list ----------------------------------------------------------------------------
@dataclass
class Allowed:
    """One row of the allow list: ``pattern`` (fnmatch on the path; ``*`` crosses ``/``),
    the ``kinds`` it covers, the ``fields`` a ``changed`` difference may name (empty: any), and
    the reason."""

    pattern: str
    kinds: tuple[str, ...]
    fields: tuple[str, ...]
    reason: str

    def explains(self, d: Difference) -> bool:
        """Whether this row covers the difference."""
        if d.kind not in self.kinds or not fnmatch.fnmatchcase(d.path, self.pattern):
            return False
        return not self.fields or set(d.fields) <= set(self.fields)


def read_allow(path: str) -> list[Allowed]:
    """The rows of the table under the ``## Expected differences`` heading of a markdown file:
    ``| `pattern` | kinds | fields | reason |`` (kinds and fields comma-separated, ``-`` for
    none). A row that does not parse is an error naming its line."""
    rows: list[Allowed] = []
    inside = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.startswith("## "):
                inside = line.strip().lower() == "## expected differences"
                continue
            if not inside or not line.startswith("|"):
                continue
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 4:
                raise ValueError(f"{path}:{n}: an allow row has 4 cells (pattern, kinds, fields, reason)")
            if cells[0].lower() == "pattern" or set(cells[0]) <= set("-: "):
                continue  # the header and its rule
            pattern = cells[0].strip("`")
            kinds = tuple(k.strip() for k in cells[1].split(",") if k.strip())
            bad = [k for k in kinds if k not in KINDS]
            if bad or not kinds:
                raise ValueError(f"{path}:{n}: unknown kind {bad or cells[1]!r} (one of {', '.join(KINDS)})")
            fields = tuple(x.strip() for x in cells[2].split(",") if x.strip() and x.strip() != "-")
            if not cells[3]:
                raise ValueError(f"{path}:{n}: an expected difference needs its reason")
            rows.append(Allowed(pattern, kinds, fields, cells[3]))
    return rows


def explain(diffs: list[Difference], allowed: list[Allowed]) -> list[Difference]:
    """Set each difference's ``reason`` from the first row that explains it; return the ones
    left unexplained."""
    left = []
    for d in diffs:
        row = next((a for a in allowed if a.explains(d)), None)
        d.reason = row.reason if row else None
        if row is None:
            left.append(d)
    return left


def fidelity(reference: str, candidate: str, allow: str = DOC) -> tuple[list[Difference], list[Difference]]:
    """Compare two trees (directories or image files): (every difference, the unexplained ones)."""
    allowed = read_allow(allow)
    with Tree(reference) as ref, Tree(candidate) as cand:
        diffs = compare_trees(ref, cand) + compare_states(ref, cand)
    return diffs, explain(diffs, allowed)


def main(argv=None) -> int:
    """The command line; see the module note."""
    ap = argparse.ArgumentParser(description="Compare a reference tree with a candidate, path by path.")
    ap.add_argument("reference", help="directory or image (qcow2/raw) the real tools made")
    ap.add_argument("candidate", help="directory or image to judge")
    ap.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ap.add_argument("--allow", default=DOC, help="markdown allow list (default: docs/fidelity.md)")
    args = ap.parse_args(argv)
    for p in (args.reference, args.candidate, args.allow):
        if not os.path.exists(p):
            print(f"fidelity: {p}: no such file or directory", file=sys.stderr)
            return 2
    try:
        diffs, left = fidelity(args.reference, args.candidate, args.allow)
    except (ValueError, OSError) as e:
        print(f"fidelity: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"reference": args.reference, "candidate": args.candidate, "differences":
                          [d.to_json() for d in diffs], "explained": len(diffs) - len(left),
                          "unexplained": len(left)}, indent=1))
    else:
        for d in diffs:
            print(d.line())
        print(f"{len(diffs)} differences, {len(diffs) - len(left)} explained, {len(left)} unexplained")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
