"""``run-parts`` (debianutils 5.7): run or list the valid executables of a directory.

Names are validated like the real program (default ``^[a-zA-Z0-9_-]+$``; ``--lsbsysinit``
namespaces; ``--regex``), sorted bytewise (alphasort in the C locale), followed through
symlinks with ``stat``. With ``--test``/``--list`` nothing runs; otherwise each program is run
through the interpreter's own command lookup (``inv.run``), so a shell hook is simulated and
anything else is deferred by the interpreter. Messages and exit codes are those of the real
program, observed on Debian 12.
"""

from __future__ import annotations

import os
import re
import stat as st

from nuwa.script.context import Defer, Invocation

_DEFAULT = re.compile(r"^[a-zA-Z0-9_-]+$")
# --lsbsysinit: LSB hierarchical and traditional names, minus dpkg's leftovers
_LSB = (re.compile(r"^_?([a-z0-9_.]+-)+[a-z0-9]+$"), re.compile(r"^[a-z0-9][a-z0-9-]*$"))
_LSB_EXCLUDE = re.compile(r"^[a-z0-9-].*dpkg-(old|dist|new|tmp)$")


def run_parts(inv: Invocation) -> int:
    """The ``run-parts`` model."""
    args = inv.argv[1:]
    test = listing = verbose = report = reverse = exit_on_error = lsb = False
    regex = None
    script_args: list[str] = []
    umask = 0o022
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        val = None
        if a == "--":
            rest += args[i + 1 :]
            break
        if a.startswith("--") and "=" in a:
            a, val = a.split("=", 1)
        if a == "--test":
            test = True
        elif a == "--list":
            listing = True
        elif a in ("-v", "--verbose"):
            verbose = True
        elif a == "--report":
            report = True
        elif a == "--reverse":
            reverse = True
        elif a == "--exit-on-error":
            exit_on_error = True
        elif a == "--lsbsysinit":
            lsb = True
        elif a in ("--new-session", "-d", "--debug"):
            pass
        elif a in ("--regex", "-a", "--arg", "-u", "--umask"):
            if val is None:
                if i + 1 >= len(args):
                    return inv.fail(f"option '{a}' requires an argument")
                val = args[i + 1]
                i += 1
            if a == "--regex":
                try:
                    regex = re.compile(val)
                except re.error:
                    return inv.fail(f"bad regex: {val}")
            elif a in ("-a", "--arg"):
                script_args.append(val)
            else:
                umask = int(val, 8)
        elif a == "--stdin":
            raise Defer("run-parts --stdin is not modelled")
        elif a.startswith("-") and a != "-":
            raise Defer(f"run-parts option {a} is not modelled")
        else:
            rest.append(a)
        i += 1
    if test and listing:
        return inv.fail("--list and --test can not be used together\nTry `run-parts --help' for more information.")
    if len(rest) != 1:
        return inv.fail("missing operand\nTry `run-parts --help' for more information.")
    dirname = rest[0]
    try:
        names = inv.fs.readdir(inv.path(dirname))
    except OSError as err:
        return inv.fail(f"failed to open directory {dirname}: {os.strerror(err.errno)}")
    names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"), reverse=reverse)
    status = 0
    for name in names:
        if regex is not None:
            valid = regex.search(name) is not None
        elif lsb:
            valid = any(r.match(name) for r in _LSB) and not _LSB_EXCLUDE.search(name)
        else:
            valid = _DEFAULT.match(name) is not None
        if not valid:
            continue
        path = f"{dirname}/{name}"
        try:
            s = inv.fs.stat(inv.path(path))
        except OSError as err:
            # reported, but (as observed) not counted in the exit status
            inv.err(f"run-parts: failed to stat component {path}: {os.strerror(err.errno)}\n")
            continue
        if st.S_ISREG(s.st_mode):
            executable = bool(s.st_mode & 0o111)
            if test or listing:
                if executable or listing:
                    inv.out(path + "\n")
                continue
            if not executable:
                continue
            if verbose:
                inv.err(f"run-parts: executing {path}\n")
            if inv.run is None:
                raise Defer(f"run-parts: cannot run {path} without an interpreter")
            code, out, err = inv.run([path, *script_args], b"")
            if report and (out or err):
                inv.out(f"{path}:\n")
            inv.out(out)
            inv.err(err)
            if code:
                inv.err(f"run-parts: {path} exited with return code {code}\n")
                status = 1
                if exit_on_error:
                    return 1
        elif not st.S_ISDIR(s.st_mode) and not listing:
            inv.err(f"run-parts: run-parts: component {path} is not an executable plain file\n\n")
            status = 1
    del umask  # scripts run with the interpreter's umask; -u is accepted for compatibility
    return status
