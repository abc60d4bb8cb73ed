"""``postconf`` (Postfix 3.7, Debian 12): what postfix's maintainer scripts ask of main.cf.

postfix's postinst edits ``/etc/postfix/main.cf`` with ``postconf -e NAME=VALUE`` and reads it
back with ``postconf -h NAME`` and ``postconf -hx NAME``; its config asks ``postconf -hx``
too. Modelled:

- ``-e NAME=VALUE...`` as ``pcf_edit_main`` (postconf_edit.c) does: each argument split at
  ``=`` with white space trimmed (``split_nameval``); main.cf copied line by line, comments and
  blank lines kept, a logical line whose name is edited replaced by ``NAME = VALUE`` (its
  continuation lines dropped; a second entry of the same name warned about), the names not
  found appended at the end; written to ``main.cf.tmp`` (mode 0644 & ~umask) and renamed over
  main.cf (``edit_file_open``/``edit_file_close``). Several new names in one call are
  appended in the order of Postfix's hash table: deferred.
- ``-h NAME`` / ``-hx NAME``: the value main.cf gives (``name = value`` logical lines, white
  space around ``=`` and at the end ignored; the last entry wins), else the compiled-in default
  of the few parameters whose default is a constant (:data:`DEFAULTS`); ``-x`` expands
  ``$name``, ``${name}``, ``$(name)`` and ``$$`` recursively from the same sources.

Deferred: any other option, another configuration directory (``-c``, ``$MAIL_CONFIG``), a
parameter whose default is computed at run time (``myhostname`` from the kernel's host name,
``mynetworks`` from the interfaces...) or not in the table, the conditional forms of
``$`` expansion, continuation lines in a value read, duplicate entries read, a main.cf without
a final newline, a ``main.cf.tmp`` already there.
"""

from __future__ import annotations

import re

from nuwa.script.context import Defer, Invocation

CONFIG_DIR = "/etc/postfix"
#: compiled-in defaults that are constants (mail_params.h, sys_defs.h for Linux)
DEFAULTS = {"default_transport": "smtp", "relay_transport": "relay", "alias_database": "hash:/etc/aliases",
            "mail_name": "Postfix"}
_SPACE = " \t\r\n\v\f"


def _logical_lines(text: str) -> list[tuple[str, list[str]]]:
    """(first physical line, continuation lines) of main.cf's parameter lines."""
    out: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        stripped = line.lstrip(_SPACE)
        if not stripped or stripped.startswith("#"):
            continue
        if stripped != line:
            if out:
                out[-1][1].append(line)
            continue
        out.append((line, []))
    return out


def read_main(inv: Invocation, path: str) -> dict[str, str]:
    """main.cf's parameters as ``postconf`` reads them (see the module note for what defers)."""
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        return {}
    except OSError as e:
        raise Defer(f"postconf: cannot read {path} ({e})") from None
    params: dict[str, str] = {}
    for first, cont in _logical_lines(text):
        name, eq, value = first.partition("=")
        name = name.strip(_SPACE)
        if not eq or not name or re.search(r"\s", name):
            raise Defer(f"postconf: a line of {path} it would reject ({first[:40]!r})")
        if cont:
            params[name] = None  # type: ignore[assignment]
            continue
        if name in params:
            raise Defer(f"postconf: {path} sets {name} twice (its warning is not modelled)")
        params[name] = value.strip(_SPACE)
    return params


def _value(params: dict, name: str) -> str:
    if name in params:
        if params[name] is None:
            raise Defer(f"postconf: {name} spans continuation lines (how they join is not modelled)")
        return params[name]
    if name in DEFAULTS:
        return DEFAULTS[name]
    raise Defer(f"postconf: the default of {name} is not modelled (computed at run time or not in the table)")


#: ``$$``, ``${name}``, ``$(name)``, ``$name``; a ``$`` followed by none of them matches alone
_MACRO = re.compile(r"\$(?:\$|\{([A-Za-z0-9_]+)\}|\(([A-Za-z0-9_]+)\)|([A-Za-z0-9_]+))?")


def expand(params: dict, value: str, depth: int = 0) -> str:
    """``mac_expand`` of ``$name``, ``${name}``, ``$(name)`` and ``$$``, recursively."""
    if depth > 100:
        raise Defer("postconf: a recursive $-expansion")

    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2) or m.group(3)
        if name is None:
            raise Defer(f"postconf: the $-expression in {value!r} is not modelled")
        return expand(params, _value(params, name), depth + 1)
    return _MACRO.sub(one, value)


def _split_nameval(arg: str) -> tuple[str, str]:
    """``split_nameval``: ``name = value``, white space trimmed; its errors are fatal."""
    name, eq, value = arg.lstrip(_SPACE).partition("=")
    name = name.rstrip(_SPACE)
    if not eq or not name:
        raise Defer(f"postconf -e: {arg!r} is refused (its fatal message is not modelled)")
    return name, value.strip(_SPACE)


def edit(inv: Invocation, path: str, args: list[str]) -> int:
    """``postconf -e NAME=VALUE...``."""
    table: dict[str, list] = {}
    for arg in args:
        if "\n" in arg or arg.lstrip(_SPACE).startswith("#"):
            raise Defer("postconf -e: multi-line or comment input (a fatal error) is not modelled")
        name, value = _split_nameval(arg)
        if name in table:
            table[name][0] = value
        else:
            table[name] = [value, 0]
    tmp = path + ".tmp"
    try:
        inv.fs.lstat(tmp)
        there = True
    except (OSError, ValueError):
        there = False
    if there:
        raise Defer(f"postconf -e: {tmp} exists (edit_file_open's locking and reuse are not modelled)")
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        text = None
    except OSError as e:
        raise Defer(f"postconf -e: cannot read {path} ({e})") from None
    out = []
    if text:
        if not text.endswith("\n"):
            raise Defer(f"postconf -e: {path} does not end with a newline (the appended line would join it)")
        interesting = False
        for line in text.split("\n")[:-1]:
            stripped = line.lstrip(_SPACE)
            if stripped.startswith("#") or not stripped:
                out.append(line + "\n")
            elif stripped != line:
                if not interesting:
                    out.append(line + "\n")
            else:
                key = re.match(r"[^ \t\r\n\v\f=]*", line).group(0)
                cv = table.get(key)
                interesting = cv is not None
                if cv is not None:
                    cv[1] += 1
                    if cv[1] == 2:
                        inv.err(f"postconf: warning: {path}: multiple entries for \"{key}\"\n")
                    out.append(f"{key} = {cv[0]}\n")
                else:
                    out.append(line + "\n")
    new = [(k, v) for k, (v, found) in table.items() if not found]
    if len(new) > 1:
        raise Defer("postconf -e: several new parameters are appended in Postfix's hash-table order; not modelled")
    out += [f"{k} = {v}\n" for k, v in new]
    data = "".join(out).encode("utf-8", "surrogateescape")
    try:
        inv.fs.write_bytes(tmp, data, 0o644 & ~inv.umask)
        inv.fs.rename(tmp, path)
    except OSError as e:
        raise Defer(f"postconf -e: cannot write {path} ({e})") from None
    return 0


def postconf(inv: Invocation) -> int:
    """``postconf -e NAME=VALUE...`` | ``postconf -h[x] NAME``."""
    if "MAIL_CONFIG" in inv.env:
        raise Defer("postconf: $MAIL_CONFIG names another configuration directory")
    args = inv.argv[1:]
    flags = ""
    while args and args[0].startswith("-") and len(args[0]) > 1 and args[0] != "--":
        flags += args[0][1:]
        args = args[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    path = f"{CONFIG_DIR}/main.cf"
    if not ((set(flags) == {"e"} and args) or (flags in ("h", "hx", "xh") and len(args) == 1)):
        raise Defer(f"postconf {' '.join(inv.argv[1:])}: this form is not modelled")
    if not inv.fs.exists(path):
        # -e: pcf_edit_main's read; -h: mail_conf_read's (each before anything is written)
        how = " for reading" if "e" in flags else ""
        inv.err(f"postconf: fatal: open {path}{how}: No such file or directory\n")
        return 1
    if flags == "e":
        return edit(inv, path, args)
    params = read_main(inv, path)
    value = _value(params, args[0])
    if "x" in flags:
        value = expand(params, value)
    inv.out(value + "\n")
    return 0
