"""Model of ``mysqladmin`` (MariaDB 10.11 client, Debian 12) on a dormant image: no server runs.

mariadb-server's postrm asks ``mysqladmin --defaults-file=/etc/mysql/debian.cnf ping`` whether
a server still answers before it touches the data directory. On a dormant image nothing runs
and ``/run`` (where the server's socket lives) is an empty tmpfs at the next boot, so every
command that needs the server gets the client's connection failure -- the rule for probes of
running state (docs/firstboot.md): answered as the dormant system answers.

What decides the message is the client's configuration, read as ``my_load_defaults`` does:
``/etc/my.cnf``, ``/etc/mysql/my.cnf``, ``~/.my.cnf`` (or only ``--defaults-file``; plus
``--defaults-extra-file``; none with ``--no-defaults``), their ``!include``/``!includedir``
(``*.cnf``, in name order), the groups ``client``, ``client-server``, ``client-mariadb``,
``mysqladmin`` and ``mariadb-admin``; values unquoted, ``#`` comments cut, the last setting
winning, the command line last. The socket (default ``/run/mysqld/mysqld.sock``) is named in::

    <BEL>mysqladmin: connect to server at 'localhost' failed
    error: 'Can't connect to local server through socket 'SOCKET' (2)'
    Check that mariadbd is running and that the socket: 'SOCKET' exists!

on stderr, status 1; ``-s``/``--silent`` print nothing, ``-b``/``--no-beep`` drop the bell. A
missing ``--defaults-file`` is "Could not open required defaults file" and "Fatal error in
defaults handling. Program aborted". Deferred: a server on another host or over TCP (name
resolution and the network of the booted machine), ``--wait``/``-w`` (it retries), ``-p``
without a password (it asks the terminal), ``--help``/``--version``/no command (the usage text),
and options the model does not know.
"""

from __future__ import annotations

import posixpath

from nuwa.script.context import Defer, Invocation

DEFAULT_SOCKET = "/run/mysqld/mysqld.sock"
GROUPS = ("client", "client-server", "client-mariadb", "mysqladmin", "mariadb-admin")
DEFAULT_FILES = ("/etc/my.cnf", "/etc/mysql/my.cnf", "~/.my.cnf")
#: long option -> (short letter, takes a value); only what decides the answer is interpreted
_OPTIONS = {"socket": ("S", True), "host": ("h", True), "protocol": (None, True), "port": ("P", True),
            "silent": ("s", False), "no-beep": ("b", False), "user": ("u", True), "password": ("p", None),
            "force": ("f", False), "compress": ("C", False), "local": ("l", False), "verbose": ("v", False),
            "vertical": ("E", False), "connect-timeout": (None, True), "shutdown-timeout": (None, True),
            "character-sets-dir": (None, True), "default-character-set": (None, True), "ssl": (None, False),
            "wait": ("w", None), "sleep": ("i", True), "count": ("c", True), "relative": ("r", False),
            "help": ("?", False), "version": ("V", False), "debug-check": (None, False),
            "debug-info": (None, False)}
_SHORT = {v[0]: k for k, v in _OPTIONS.items() if v[0]}


class _Fatal(Exception):
    pass


def _read_option_file(inv: Invocation, path: str, settings: list, depth: int = 0) -> bool:
    """Append (key, value) of ``path``'s client groups to ``settings``; False if unreadable."""
    if depth > 10:
        raise Defer("mysqladmin: option files include each other too deeply")
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except OSError:
        return False
    active = False
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("!"):
            word, _, arg = line.partition(" ")
            arg = arg.strip()
            if word == "!include":
                _read_option_file(inv, arg, settings, depth + 1)
            elif word == "!includedir":
                try:
                    names = sorted(n for n in inv.fs.readdir(arg) if n.endswith(".cnf"))
                except OSError:
                    names = []
                for n in names:
                    _read_option_file(inv, posixpath.join(arg, n), settings, depth + 1)
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise Defer(f"mysqladmin: {path}: a group header it would reject ({line!r})")
            active = line[1:-1].strip() in GROUPS
            continue
        if not active:
            continue
        key, eq, value = line.partition("=")
        key = key.strip().replace("_", "-")
        value = value.strip()
        if value[:1] in ("'", '"'):
            q = value[0]
            end = value.find(q, 1)
            if end < 0:
                raise Defer(f"mysqladmin: {path}: an unterminated quote")
            value = value[1:end]
        elif "#" in value:
            value = value.split("#", 1)[0].rstrip()
        settings.append((key, value if eq else None))
    return True


def _home(inv: Invocation) -> str:
    return inv.env.get("HOME", "/root")


def _defaults(inv: Invocation, argv: list[str]) -> tuple[list, list[str]]:
    """The option files' settings and the arguments after the leading defaults options."""
    files: list[str] = list(DEFAULT_FILES)
    extra = None
    rest = list(argv)
    while rest and rest[0].startswith(("--defaults-file=", "--defaults-extra-file=", "--no-defaults",
                                       "--print-defaults", "--defaults-group-suffix=")):
        a = rest.pop(0)
        if a.startswith("--defaults-file="):
            files = [a.split("=", 1)[1]]
        elif a.startswith("--defaults-extra-file="):
            extra = a.split("=", 1)[1]
        elif a == "--no-defaults":
            files = []
        else:
            raise Defer(f"mysqladmin {a} is not modelled")
    settings: list = []
    if len(files) == 1 and files[0] not in DEFAULT_FILES:
        path = inv.path(files[0])
        if not _read_option_file(inv, path, settings):
            raise _Fatal(f"Could not open required defaults file: {path}\n"
                         "Fatal error in defaults handling. Program aborted\n")
    else:
        for f in files:
            _read_option_file(inv, _home(inv) + f[1:] if f.startswith("~/") else f, settings)
        if extra is not None and not _read_option_file(inv, inv.path(extra), settings):
            raise _Fatal(f"Could not open required defaults file: {inv.path(extra)}\n"
                         "Fatal error in defaults handling. Program aborted\n")
    return settings, rest


def _command_line(args: list[str]) -> tuple[list, list[str]]:
    """handle_options over the command line: (settings, commands)."""
    out: list = []
    commands: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a == "--":
            commands += args[i + 1:]
            break
        if a.startswith("--"):
            key, eq, value = a[2:].partition("=")
            key = key.replace("_", "-")
            if key not in _OPTIONS:
                raise Defer(f"mysqladmin --{key} is not modelled")
            takes = _OPTIONS[key][1]
            if takes and not eq:
                i += 1
                if i >= len(args):
                    raise Defer(f"mysqladmin --{key} without its value (its error is not modelled)")
                value = args[i]
            out.append((key, value if (eq or takes) else None))
        elif a.startswith("-") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                if c not in _SHORT:
                    raise Defer(f"mysqladmin -{c} is not modelled")
                key = _SHORT[c]
                takes = _OPTIONS[key][1]
                if takes is False:
                    out.append((key, None))
                    j += 1
                    continue
                value = a[j + 1:]
                if not value and takes:
                    i += 1
                    if i >= len(args):
                        raise Defer(f"mysqladmin -{c} without its value (its error is not modelled)")
                    value = args[i]
                out.append((key, value or None))
                break
        else:
            commands.append(a)
        i += 1
    return out, commands


def mysqladmin(inv: Invocation) -> int:
    """See the module note."""
    try:
        settings, rest = _defaults(inv, inv.argv[1:])
    except _Fatal as e:
        inv.err(str(e))
        return 1
    cmdline, commands = _command_line(rest)
    opts: dict[str, str | None] = {}
    for key, value in settings + cmdline:
        opts[key] = value
    if {"help", "version"} & set(opts) or not commands:
        raise Defer("mysqladmin: its usage and version texts are not modelled")
    if "wait" in opts:
        raise Defer("mysqladmin --wait: it retries until a server answers")
    if "password" in opts and opts["password"] is None and ("password", None) in cmdline:
        raise Defer("mysqladmin -p without a password asks the terminal")
    host = opts.get("host") or "localhost"
    if host != "localhost" or (opts.get("protocol") or "").lower() not in ("", "socket"):
        raise Defer(f"mysqladmin: a server on {host} over TCP: the booted machine's network answers")
    if "silent" in opts:
        return 1
    sock = opts.get("socket") or DEFAULT_SOCKET
    bell = "" if "no-beep" in opts else "\a"
    inv.err(f"{bell}{inv.argv[0]}: connect to server at 'localhost' failed\n"
            f"error: 'Can't connect to local server through socket '{sock}' (2)'\n"
            f"Check that mariadbd is running and that the socket: '{sock}' exists!\n")
    return 1
