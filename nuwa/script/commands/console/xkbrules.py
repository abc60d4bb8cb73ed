"""ckbcomp's reading of an XKB rules file (console-setup 1.221, ``/usr/bin/ckbcomp`` lines
"READ THE RULES FILE"): which keycodes and symbols components a model, layouts, variants
and options name.

It is ckbcomp's own reading, not xkbcomp's: a section ``! a b = c d`` names its antecedents
(``model``, ``layout``, ``layout[N]``, ``variant``, ``variant[N]``, ``option``), a rule
line matches when each pattern is ``*`` (a non-empty value), a ``$variable`` of the file
that lists the value, the value itself, or, for ``option``, one of the options; the first
matching rule of a section wins except in option sections, where every matching rule
counts; a consequent starting with ``+`` is appended, another is taken only when nothing was
chosen yet. ``%m``, ``%l``, ``%l[N]``, ``%v``, ``%v[N]`` with ``%(v)`` and ``%_v`` are
expanded as ckbcomp's chain of substitutions does.

What makes Perl print a warning or die is deferred (an unknown antecedent name, a line that
is not a rule, a rule with the wrong number of fields, a ``%l[N]`` with no such layout).
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer

_WS = "[ \t\n\r\f\v]"
_VARDEF = re.compile(r"! ?\$([a-zA-Z0-9_]+) ?= ?(.+)", re.ASCII)
_SECTION = re.compile(r"! ?(.+)= ?(.+)", re.ASCII)
_RULE = re.compile(r"(.+)= ?(.+)", re.ASCII)
_VARREF = re.compile(r"\$([a-zA-Z0-9_]+)", re.ASCII)
_INDEXED = re.compile(r"(layout|variant)\[([1-4])\]", re.ASCII)
_PCT = re.compile(r"(%[lvm](\[[1-4]\])?)", re.ASCII)


def awk_split(text: str) -> list[str]:
    """Perl's ``split ' ', $text`` on a byte string: fields between ASCII white space."""
    return re.findall(f"[^{_WS[1:-1]}]+", text)


def perl_true(value) -> bool:
    """Perl's truth of a scalar: defined, not '' and not '0'."""
    return value is not None and value != "" and value != "0"


def _matches(string: str, pattern: str, variables: dict, options: list[str]) -> bool:
    """``matches_pattern``."""
    if string == "OPTIONS":
        return any(o != "" and pattern == o for o in options)
    if pattern == "*":
        return string != ""
    m = _VARREF.fullmatch(pattern)
    if m:
        return string in variables.get(m.group(1), [])
    return string == pattern


def _expand(value: str, model: str, layouts: list[str], variants: list[str]) -> str:
    """The substitutions ckbcomp applies to one consequent value, in its order."""
    value = value.replace("%(", "(;%").replace("%_", "_;%")
    value = _PCT.sub(lambda m: m.group(1) + ";", value)
    value = value.replace("%m", model)
    for name, items in (("%l", layouts), ("%v", variants)):
        for n in (1, 2, 3, 4):
            token = f"{name}[{n}]"
            if token in value:
                if n > len(items):
                    raise Defer(f"ckbcomp: rules expand {token} with no such value (Perl warns)")
                value = value.replace(token, items[n - 1])
        value = value.replace(name, items[0])
    return value.replace("(;;)", "").replace("_;;", "").replace(";", "")


def components(text: str, rules: str, model: str, layouts: list[str], variants: list[str],
               options: list[str]) -> tuple[str | None, str | None]:
    """(keycodes, symbols) the rules file ``text`` gives (each None when nothing matched)."""
    variables: dict[str, list[str]] = {}
    keycodes: str | None = None
    symbols: str | None = None
    antecedents: list[str] = []
    consequents: list[str] = []
    match_found = False
    oldline = ""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        if re.match(f"{_WS}*//", line, re.ASCII) or re.fullmatch(f"{_WS}*", line, re.ASCII):
            continue
        line = re.sub(f"^{_WS}*", "", line, flags=re.ASCII)
        line = re.sub(f"{_WS}+", " ", line, flags=re.ASCII)
        if oldline:
            line, oldline = oldline + line, ""
        if line.endswith("\\"):
            oldline = line[:-1] + " "
            continue
        m = _VARDEF.fullmatch(line)
        if m:
            variables[m.group(1)] = awk_split(m.group(2))
            continue
        m = _SECTION.fullmatch(line)
        if m:
            antecedents = []
            for name in awk_split(m.group(1)):
                ix = _INDEXED.fullmatch(name)
                if name == "model":
                    value = model
                elif name == "layout" and len(layouts) == 1:
                    value = layouts[0]
                elif ix:
                    items = layouts if ix.group(1) == "layout" else variants
                    value = "" if len(items) <= 1 else (items[int(ix.group(2)) - 1]
                                                         if int(ix.group(2)) <= len(items) else "")
                elif name == "variant" and len(variants) == 1:
                    value = variants[0]
                elif name == "option":
                    value = "OPTIONS"
                elif name in ("layout", "variant"):
                    value = ""
                else:
                    raise Defer(f"ckbcomp: rules/{rules} names {name!r} in a section (ckbcomp warns)")
                antecedents.append(value)
            consequents = awk_split(m.group(2))
            match_found = False
            continue
        m = _RULE.fullmatch(line)
        if not m:
            raise Defer(f"ckbcomp: a line of rules/{rules} ckbcomp dies on: {line[:60]!r}")
        if match_found:
            continue
        patterns = awk_split(m.group(1))
        if len(patterns) != len(antecedents):
            raise Defer(f"ckbcomp: a rule of rules/{rules} with a bad number of antecedents (ckbcomp warns)")
        if not all(_matches(a, p, variables, options) for a, p in zip(antecedents, patterns)):
            continue
        match_found = antecedents[0] != "OPTIONS"
        values = awk_split(m.group(2))
        if len(values) != len(consequents):
            raise Defer(f"ckbcomp: a rule of rules/{rules} with a bad number of consequents (ckbcomp warns)")
        for kind, raw in zip(consequents, values):
            value = _expand(raw, model, layouts, variants)
            if kind not in ("keycodes", "symbols"):
                continue
            current = keycodes if kind == "keycodes" else symbols
            if value.startswith("+"):
                if current is None:
                    raise Defer(f"ckbcomp: rules/{rules} appends {value!r} to no {kind} (Perl warns)")
                current += value
            elif not perl_true(current):
                current = value
            if kind == "keycodes":
                keycodes = current
            else:
                symbols = current
    return keycodes, symbols
