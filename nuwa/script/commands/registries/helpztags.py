"""Model of ``helpztags`` (vim-common 9.0, Debian 12): the tags files of Vim help directories.

vim-runtime's postinst (and Vim add-on packages) run ``helpztags /usr/share/vim/addons/doc``.
The real program is a Perl script; this model does what it does, quirks included:

- with no directory it dies: "Error: no directories given. Check manpage for details.", 255;
- for each DIR it can ``chdir`` into (else it is skipped in silence) it prints ``Processing
  DIR`` and reads the files that File::Glob's ``<*.{gz,txt,??x}>`` lists -- each brace group in
  turn, each group in GLOB_ALPHASORT order (ASCII case folded, ties by byte order; no name
  beginning with a dot) -- whose names match ``^[\\w.-]+\\.(?:txt|([[:alpha:]]{2})x)(?:.gz)?$``
  (``xx`` names the language: ``tags-xx``), ``.gz`` ones through ``zcat``;
- in each line, a ``*tag*`` counts when the tag has no ``*``, white space or ``|``, is at the
  line's start or after white space, and is followed by white space or the line's end; a tag
  seen again points at the later file;
- the tags collected so far -- from *every* directory processed until then, the script never
  clears them -- are written into each directory: ``TAG<TAB>FILE<TAB>/*TAG*`` sorted by byte
  order, backslashes doubled in the pattern (its ``s@/@\\/@g`` changes nothing), one file per
  language, created 0666 less the umask or truncated.

Deferred: a file it cannot open (the script then goes on from its start directory, reading the
rest of the listing there) and a ``.gz`` that zcat cannot fully decompress (zcat's messages).
"""

from __future__ import annotations

import gzip
import posixpath
import re
import zlib

from nuwa.script.context import Defer, Invocation

_NAME = re.compile(rb"^[A-Za-z0-9_.-]+\.(?:txt|([A-Za-z]{2})x)(?:.gz)?\Z")
_TAG = re.compile(rb"(?:^|(?<=\s))\*([^*\s|]+?)\*(?=\s|$)")
_GROUPS = (rb".gz", rb".txt", None)  # *.gz, *.txt, *.??x


def _fold(name: bytes) -> bytes:
    return name.lower()


def _alphasort(names: list[bytes]) -> list[bytes]:
    """bsd_glob's ``ci_compare``: ASCII case folded, then byte order."""
    return sorted(names, key=lambda n: (_fold(n), n))


def glob_listing(names: list[bytes]) -> list[bytes]:
    """``<*.{gz,txt,??x}>`` over a directory's entry names."""
    out = []
    visible = [n for n in names if not n.startswith(b".")]
    for suffix in _GROUPS:
        if suffix is None:
            group = [n for n in visible if len(n) >= 4 and n[-4:-3] == b"." and n.endswith(b"x")
                     and b"/" not in n]
        else:
            group = [n for n in visible if n.endswith(suffix)]
        out += _alphasort(group)
    return out


def _lines_tags(data: bytes) -> list[bytes]:
    tags = []
    for line in data.splitlines(keepends=True):
        tags += [m.group(1) for m in _TAG.finditer(line)]
    return tags


def helpztags(inv: Invocation) -> int:
    """``helpztags DIR...``: see the module note."""
    dirs = inv.argv[1:]
    if not dirs:
        inv.err("Error: no directories given. Check manpage for details.\n")
        return 255
    fs = inv.fs
    tags: dict[str, dict[bytes, bytes]] = {}
    for d in dirs:
        path = inv.path(d)
        try:
            if not fs.stat(path).is_dir:
                continue
            names = [n.encode("utf-8", "surrogateescape") for n in fs.readdir(path)]
        except OSError:
            continue
        inv.out(f"Processing {d}\n")
        for name in glob_listing(names):
            m = _NAME.match(name)
            if not m:
                continue
            suffix = "-" + m.group(1).decode() if m.group(1) else ""
            full = posixpath.join(path, name.decode("utf-8", "surrogateescape"))
            try:
                st = fs.stat(full)
                data = b"" if st.is_dir else fs.read_bytes(full)
            except OSError:
                raise Defer(f"helpztags: {full} cannot be opened (the script then reads on from its start "
                            "directory)") from None
            if name.endswith(b".gz") and not st.is_dir:
                try:
                    data = gzip.decompress(data)
                except (OSError, EOFError, zlib.error):
                    raise Defer(f"helpztags: zcat cannot decompress {full} (its messages are not modelled)") \
                        from None
            table = tags.setdefault("tags" + suffix, {})
            for t in _lines_tags(data):
                table[t] = name
        for tagfile, table in tags.items():
            if not table:
                continue
            body = b"".join(t + b"\t" + table[t] + b"\t/*" + t.replace(b"\\", b"\\\\") + b"*\n"
                            for t in sorted(table))
            target = posixpath.join(path, tagfile)
            try:
                if fs.lexists(target):
                    fs.write_bytes(target, body)
                else:
                    fs.write_bytes(target, body, 0o666 & ~inv.umask)
            except OSError:
                raise Defer(f"helpztags: cannot write {target} (the script dies there)") from None
    return 0
