"""``install-info`` (texinfo 6.8, Debian 12's package install-info): the Info ``dir`` file.

install-info's postinst and its trigger on ``/usr/share/info`` run ``update-info-dir`` (a
shell script the simulator interprets), which removes ``dir`` and runs ``install-info FILE
/usr/share/info/dir`` for every info file; package scripts of older releases call
``install-info --remove``/``--section``/``--entry`` themselves.

This module is ``main`` of ``install-info/install-info.c`` from "Now read in the Info dir
file" on: reading the dir and the info file, choosing the entries and sections, deleting,
deciding where entries and new sections go, and ``output_dirfile``. The command line and the
file reading are in :mod:`infofiles`, the text rules in :mod:`infodir`; the deferred forms
are listed in :mod:`infofiles`. The whole new dir file is computed before it is written, so
a deferral never leaves half a file.
"""

from __future__ import annotations

import posixpath

from nuwa.script.commands.registries import infodir as ii
from nuwa.script.commands.registries.infofiles import PROG, Exit, Run, locale_non_c, options, readfile, \
    strip_info_suffix
from nuwa.script.context import Defer, Invocation


def install_info(inv: Invocation) -> int:
    """``install-info`` of texinfo 6.8: merge (or, with ``--remove``, delete) the Info
    directory entries of an info file in a dir file; returns the exit status."""
    run = Run(inv)
    try:
        non_c = locale_non_c(inv)
        options(run)
        status = _main(run, non_c)
    except Exit as e:
        status = e.status
    except ii.Fatal as e:
        inv.err(f"{PROG}: {e}\n")
        status = 1
    # a Defer has left by now: only a run that ends as the program would writes anything
    return run.flush() or status


def _b(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _main(run: Run, non_c: bool) -> int:
    """``main`` from reading the dir file on; the new dir file is left in ``run.output``."""
    inv = run.inv
    if run.infile is None:
        run.fatal("No input file specified; try --help for more information.")
    if run.dirfile is None:
        run.fatal("No dir file specified; try --help for more information.")
    if run.debug:
        inv.out(f"debug: reading dir file {run.dirfile}\n")
    dir_data, dir_opened, compressed, err = readfile(run, run.dirfile, not run.delete)
    if dir_data is None:
        if not run.delete:
            run.pfatal(err, dir_opened)
        run.warning(f"Could not read {dir_opened}.")
        return 0
    if compressed:
        raise Defer(f"install-info: the dir file {dir_opened} is compressed (written back through {compressed})")
    if b"\0" in dir_data:
        raise Defer(f"install-info: the dir file {dir_opened} holds a NUL byte")
    lines = ii.findlines(dir_data)
    nlines = len(lines) - 1
    nodes = ii.parse_dir_file(dir_data, lines)
    sections = run.sections
    if not run.delete and run.regex is not None:
        for node in nodes:
            for sec in node.sections:
                if run.regex.search(sec.name.decode("latin-1")):
                    sections = ii.Section(sec.name, sections, missing=False)

    infile = run.infile
    if not run.remove_exactly:
        sans_info = _b(strip_info_suffix(posixpath.basename(infile)))
    else:
        sans_info = _b(infile)
    in_data, in_lines = b"", [ii.Line(None, 0)]
    if not run.remove_exactly:
        if run.debug:
            inv.out(f"debug: reading input file {infile}\n")
        in_data, opened, _prog, err = readfile(run, infile, False)
        if in_data is None:
            run.pfatal(err, opened)
        in_lines = ii.findlines(in_data)

    entries = run.entries
    # the C passes the (empty) list of the file's entries, so the file's entries are always
    # read, also when the command line gives entries
    from_file: list[ii.Entry] = []
    sections, n_file = ii.parse_input(in_data, in_lines, sections, from_file, run.delete)
    if _has_nul(sections):
        raise Defer("install-info: a section name of the info file holds a NUL byte")
    n_entries = len(entries)
    if not run.delete:
        if not entries:
            entries, n_entries = from_file, n_file
        elif not from_file:
            _add_missing_names(entries, sans_info)
        else:
            name, _len, desc = ii.split_entry(from_file[0].text)
            if name is not None:
                _add_missing_names(entries, name if name.startswith(b"*") else sans_info)
            if desc is not None:
                _add_missing_descriptions(entries, desc)
        _add_missing_basenames(entries, sans_info)
        if non_c and any(not e.text.isascii() for e in entries):
            raise Defer("install-info: non-ASCII entries under a locale other than C (its case folding)")
        if run.indent and "INSTALL_INFO_NO_INDENT" not in inv.env:
            ii.reformat_new_entries(entries, run.calign, run.align, run.maxwidth)
        if sections is None:
            sections = ii.Section(run.default_section if run.default_section is not None else b"Miscellaneous", None)
        if not entries:
            if not run.quiet:
                run.warning(f"no info dir entry in `{infile}'")
            return 0
        if n_entries > 0 and entries[0].sections is None:
            for e in entries:
                e.sections = sections
    if non_c and (not dir_data.isascii() or not sans_info.isascii() or not _names_ascii(sections)
                  or any(not (e.text or b"").isascii() for e in entries)):
        raise Defer("install-info: non-ASCII text under a locale other than C (its case folding)")

    deleted = False
    if run.delete:
        deleted = ii.mark_entry_for_deletion(dir_data, lines, sans_info, run.remove_exactly)
        if not deleted and not run.remove_exactly:
            for e in entries:
                if e.sections is not None:  # never: only the info file's entries have them
                    deleted = ii.mark_entry_for_deletion(dir_data, lines, ii.cstr(e.text), run.remove_exactly)
            if not deleted:
                for e in entries:
                    if e.sections is None:
                        deleted = ii.mark_entry_for_deletion(dir_data, lines, ii.cstr(e.text), run.remove_exactly)
    if run.delete and deleted and not run.keep_old:
        _delete_empty_sections(lines, nodes)
    if not run.delete:
        _place_entries(run, dir_data, lines, nodes, sections, entries, n_entries)
        _place_sections(run, lines, nodes, sections)
    if run.delete and not deleted and not run.quiet:
        run.warning(f"no entries found for `{infile}'; nothing deleted")
    if run.debug:
        inv.out(f"debug: writing dir file {dir_opened}\n")
    if run.chicken:
        inv.out(f"test mode, not updating dir file {dir_opened}\n")
        return 0
    run.output = (dir_opened, _output(run, dir_data, lines, nlines, entries, n_entries))
    return 0


def _names_ascii(sec: ii.Section | None) -> bool:
    while sec is not None:
        if not sec.name.isascii():
            return False
        sec = sec.next
    return True


def _has_nul(sec: ii.Section | None) -> bool:
    while sec is not None:
        if b"\0" in sec.name:
            return True
        sec = sec.next
    return False


def _add_missing_names(entries: list[ii.Entry], name: bytes) -> None:
    """``add_missing_names``: ``* NAME: (NAME).`` before a description given without a name."""
    for e in entries:
        if not e.missing_name:
            continue
        text = e.text or b""
        nl = b"" if e.text and e.text.endswith(b"\n") else b"\n"
        head = name if name.startswith(b"*") else b"* " + name + b": (" + name + b")."
        e.text = head + text + nl
        e.missing_name = e.missing_basename = False


def _add_missing_descriptions(entries: list[ii.Entry], desc: bytes) -> None:
    """``add_missing_descriptions``: the info file's description after a ``--name`` entry."""
    nl = b"" if len(desc) > 1 and desc.endswith(b"\n") else b"\n"
    for e in entries:
        if e.missing_description:
            e.text = (e.text or b"") + desc + nl


def _add_missing_basenames(entries: list[ii.Entry], name: bytes) -> None:
    """``add_missing_basenames``: the info file's name in a ``--name`` entry's ``()``."""
    for e in entries:
        if not e.missing_basename:
            continue
        at = e.text.find(b": (). ")
        if at < 0:
            return  # the C returns here, leaving later entries as they are
        e.text = e.text[:at] + b": (" + name + b"). " + e.text[at + 6:]
        e.missing_name = e.missing_basename = False


def _delete_empty_sections(lines: list[ii.Line], nodes: list[ii.Node]) -> None:
    """Sections left with no entries lose their title and trailing blank lines."""
    for node in nodes:
        for sec in node.sections:
            empty = True
            for i in range(sec.end_line, sec.start_line, -1):
                if not lines[i - 1].delete and lines[i - 1].size != 0:
                    empty = False
                    break
            if empty:
                for i in range(sec.end_line, sec.start_line - 1, -1):
                    lines[i - 1].delete = True


def _line_text(data: bytes, line: ii.Line) -> bytes:
    return data[line.start:line.start + line.size]


def _place_entries(run: Run, data: bytes, lines: list[ii.Line], nodes: list[ii.Node], sections: ii.Section | None,
                   entries: list[ii.Entry], n_entries: int) -> None:
    """Each entry into every existing section it names, in menu order, replacing (or, with
    ``--keep-old``, keeping) a same-named entry there."""
    for node in nodes:
        for sec in node.sections:
            i = sec.end_line
            while i > sec.start_line and lines[i - 1].size == 0:
                i -= 1
            sec.end_line = i
            spec = sections
            while spec is not None and spec.name != sec.name:
                spec = spec.next
            if spec is None:
                continue
            spec.missing = False
            # one add_at_line per section, as in the C: an entry that sorts after every line
            # goes where the previous entry went (or nowhere after a --keep-old match)
            add_at = sec.end_line
            for entry in entries:
                if sec.name not in entry.section_names():
                    continue
                for i in range(sec.end_line - 1, sec.start_line - 2, -1):
                    line = lines[i]
                    text = _line_text(data, line)
                    starred = data[line.start] == 0x2A
                    if starred and ii.menu_line_equal(entry.text, text) and not line.delete:
                        if run.keep_old:
                            add_at = -1
                            break
                        line.delete = True
                        for j in range(i + 1, sec.end_line):
                            if data[lines[j].start] == 0x2A:
                                break
                            lines[j].delete = True
                    if starred and ii.menu_line_lessp(entry.text, text):
                        add_at = i
                if add_at < 0:
                    continue
                ii.insert_entry_here(entry, lines[add_at], n_entries)


def _place_sections(run: Run, lines: list[ii.Line], nodes: list[ii.Node], sections: ii.Section | None) -> None:
    """Sections no existing one matched go before the first Top section whose name sorts
    after theirs (no case), or at the end of the Top node."""
    top = None
    for node in nodes:
        if node.name == b"Top":
            top = node
    if top is None:
        return
    spec = sections
    while spec is not None:
        if spec.missing:
            target = None
            if run.alphabetical:
                prev = None
                for sec in top.sections:
                    if ii.casecmp(ii.cstr(spec.name), sec.name) < 0:
                        target = lines[prev.end_line] if prev else lines[top.sections[0].start_line - 2]
                        break
                    prev = sec
            if target is None:
                target = lines[top.end_line]
            target.add_sections_before.append(spec)
        spec = spec.next


def _output(run: Run, data: bytes, lines: list[ii.Line], nlines: int, entries: list[ii.Entry],
            n_entries: int) -> bytes:
    """``output_dirfile``: the old lines with the new entries and sections interpolated."""
    out = bytearray()
    added = 0
    for i in range(nlines + 1):
        line = lines[i]
        if line.add_entries_before is not None:
            for this in line.add_entries_before[:n_entries]:
                if this is None or (added >= 1 and not run.add_all):
                    break
                out += ii.cstr(this.text)
                added += 1
        if line.add_sections_before:
            if added >= 1 and not run.add_all:
                break  # --add-once: the C leaves the output loop, the rest is not written
            specs = ii.msort(line.add_sections_before, ii.compare_section_names)
            ordered = ii.msort(list(entries), ii.compare_entries_text)
            for spec in specs:
                if not spec.missing:
                    continue
                out += b"\n" + ii.cstr(spec.name) + b"\n"
                spec.missing = False
                for e in ordered:
                    if spec.name in e.section_names():
                        out += ii.cstr(e.text)
            added += 1
        if i < nlines and not line.delete:
            out += _line_text(data, line) + b"\n"
    return bytes(out)
