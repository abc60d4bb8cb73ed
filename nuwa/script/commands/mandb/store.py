"""man-db 2.11.2's index records: how a page's whatis becomes keys and values of index.db.

Mirrors ``src/descriptions.c`` (``parse_descriptions``), ``src/descriptions_store.c``
(``store_descriptions``) and ``libdb/db_store.c`` (``dbstore``, ``replace_if_necessary``,
``make_content``), over a dict of C strings (key -> value, without their NUL) that stands
for the database while mandb fills it. The file itself is written afterwards, as mandb's
``reorganize`` does: every key in sorted order into a new gdbm file.

mandb visits a directory's pages in the order of their first blocks on disk (``order_files``,
FIEMAP), which a model of the image's filesystem does not know. Where two pages compete for
one record the result can depend on that order; every such competition is checked here in
both orders (``replace_if_necessary`` of each over the other), and one that does not pick the
same winner either way raises :class:`OrderDependent`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

ULT_MAN, SO_MAN, WHATIS_MAN, STRAY_CAT, WHATIS_CAT = "A", "B", "C", "D", "E"
VER_KEY, VER_ID = "$version$", "2.5.0"


class OrderDependent(Exception):
    """A record whose content depends on the order mandb reads pages in (names it)."""


class StoreFailed(Exception):
    """``dbstore`` failed (an empty name, or two pages told apart only by their compression
    extension): mandb stops storing that page's descriptions; which page got in first
    depends on the order, so the model does not go on (names the key)."""


@dataclass
class Mandata:
    """``struct mandata`` (db_storage.h); strings are bytes held as latin-1 ``str``."""

    name: str | None = None
    ext: str = ""
    sec: str = ""
    mtime: tuple[int, int] = (0, 0)
    id: str = ULT_MAN
    pointer: str | None = None
    filter: str | None = None
    comp: str | None = None
    whatis: str | None = None


def name_to_key(name: str) -> str:
    """``name_to_key``: ``tolower`` of each byte; in the C and UTF-8 locales only ASCII."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in name)


def make_content(d: Mandata) -> str:
    """``make_content``: the tab-separated value (unset fields as ``-``, whatis as empty)."""
    return "\t".join((d.name or "-", d.ext, d.sec, str(d.mtime[0]), str(d.mtime[1]), d.id,
                      d.pointer or "-", d.filter or "-", d.comp or "-", d.whatis or ""))


def split_content(cont: str) -> Mandata:
    """``split_content``: a stored value back into its fields (``-`` name is unset)."""
    f = cont.split("\t", 9)
    if len(f) < 10:
        raise OrderDependent(f"index record {cont!r} has {len(f)} fields")
    return Mandata(name=None if f[0] == "-" else f[0], ext=f[1], sec=f[2],
                   mtime=(int(f[3]), int(f[4])), id=f[5], pointer=f[6], filter=f[7],
                   comp=f[8], whatis=f[9])


def compare_ids(a: str, b: str, promote_links: bool) -> int:
    """``compare_ids`` (without FAVOUR_STRAYCATS, as Debian builds it)."""
    if promote_links and {a, b} == {ULT_MAN, SO_MAN}:
        return 0
    return (a > b) - (a < b)


def _cmp(a, b) -> int:
    return (a > b) - (a < b)


def replace_action(new: Mandata, old: Mandata) -> str:
    """``replace_if_necessary``'s decision: "yes", "no" or "fail"."""
    if compare_ids(new.id, old.id, False) < 0:
        return "yes"
    if compare_ids(new.id, old.id, True) <= 0 and _cmp(new.mtime, old.mtime) > 0:
        return "yes"
    if compare_ids(new.id, old.id, True) <= 0 and _cmp(new.mtime, old.mtime) < 0:
        return "no"
    if compare_ids(new.id, old.id, False) > 0:
        return "no"
    if new.pointer and old.pointer and new.pointer.encode("latin-1") < old.pointer.encode("latin-1"):
        return "yes"
    if new.pointer and old.pointer and new.pointer.encode("latin-1") > old.pointer.encode("latin-1"):
        return "no"
    if (new.comp or "-") != old.comp:
        return "fail"
    return "no"


class Index:
    """The records of one database while mandb stores into it."""

    def __init__(self, records: dict[str, str] | None = None):
        self.records: dict[str, str] = dict(records or {})

    def _replace_if_necessary(self, key: str, cont: str) -> None:
        """``replace_if_necessary`` of ``cont`` over the record at ``key`` (both sides as
        ``make_content`` leaves them: unset fields already ``-``)."""
        old_cont = self.records[key]
        action = replace_action(split_content(cont), split_content(old_cont))
        if cont != old_cont:
            # the competitor's record as it would stand had it come second
            reverse = replace_action(split_content(old_cont), split_content(cont))
            if action == "fail" or reverse == "fail" or (action == "yes") == (reverse == "yes"):
                raise OrderDependent(f"index record {key!r}: {old_cont!r} or {cont!r}")
        if action == "fail":
            raise StoreFailed(key)
        if action == "yes":
            self.records[key] = cont

    def dbstore(self, d: Mandata, base: str) -> None:
        """``dbstore``: situations (1) no key, (2) a multiple reference, (3) one entry."""
        if not base:
            raise StoreFailed(base)
        key = name_to_key(base)
        old = self.records.get(key)
        if old is None:                                   # (1)
            d = replace(d, name=base if base != key else None)
            self.records[key] = make_content(d)
            return
        if old.startswith("\t"):                           # (2)
            newkey = f"{base}\t{d.ext}"
            newcont = make_content(d)
            if newkey in self.records:
                self._replace_if_necessary(newkey, newcont)
                return
            self.records[newkey] = newcont
            refs = _list_extensions(old[1:])
            refs.append((base, d.ext))
            self.records[key] = _extensions_reference(refs)
            return
        old_d = split_content(old)                         # (3)
        old_name = old_d.name if old_d.name else key
        if old_name == base and old_d.ext == d.ext:
            nd = replace(d, name=base if base != key else None)
            self._replace_if_necessary(key, make_content(nd))
            return
        self.records[f"{old_name}\t{old_d.ext}"] = make_content(replace(old_d, name=None))
        newkey = f"{base}\t{d.ext}"
        # replace_if_necessary against the old single entry: "yes" replaces, "no" inserts
        # (a no-op on an existing key), "fail" stores nothing but the references still follow
        action = replace_action(split_content(make_content(d)), old_d)
        if action == "fail":
            raise StoreFailed(newkey)
        if action == "yes" or newkey not in self.records:
            self.records[newkey] = make_content(d)
        refs = [(old_name, old_d.ext), (base, d.ext)]
        self.records[key] = _extensions_reference(refs)


def _list_extensions(data: str) -> list[tuple[str, str]]:
    """``list_extensions``: the (name, ext) pairs of a multiple reference."""
    parts = data.split("\t")
    return [(parts[i], parts[i + 1]) for i in range(0, len(parts) - 1, 2)]


def _extensions_reference(refs: list[tuple[str, str]]) -> str:
    """``make_extensions_reference`` of the refs sorted by ``name_ext_compare`` (strcmp)."""
    refs = sorted(refs, key=lambda r: (r[0].encode("latin-1"), r[1].encode("latin-1")))
    return "".join(f"\t{n}\t{e}" for n, e in refs)


# --- descriptions ---------------------------------------------------------------------------

def _trim_spaces(s: str) -> str:
    """``trim_spaces``: without leading and trailing spaces (only ' ')."""
    return s.strip(" ")


def parse_descriptions(base: str | None, whatis: str | None) -> list[tuple[str, str | None]]:
    """``parse_descriptions``: (name, whatis or None) for each name of each record."""
    descs: list[tuple[str, str | None]] = []
    seen_base = False
    if whatis is None:
        return descs
    sep: str | None = whatis
    while sep is not None:
        i = 0
        while i < len(sep) and sep[i] in "\x11 ":
            i += 1
        sep = sep[i:]
        j = sep.find("\x11")
        record, nextsep = (sep[:j], sep[j:]) if j >= 0 else (sep, None)
        if not record:
            break
        dash = record.find(" - ")
        if dash >= 0:
            names = record[:dash]
        elif not descs:
            names = record
        else:
            sep = nextsep
            continue
        for token in names.split(","):
            if not token:
                continue          # strtok skips empty tokens
            name = _trim_spaces(token)
            if " " in name or "\t" in name:
                continue
            descs.append((name, _trim_spaces(record[dash + 3:]) if dash >= 0 else None))
            if base is not None and base == name:
                seen_base = True
        sep = nextsep
    if base is not None and not seen_base:
        descs.append((base, descs[0][1] if descs and descs[0][1] is not None else None))
    return descs
