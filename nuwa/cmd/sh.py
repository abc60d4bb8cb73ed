"""``nuwa sh``: run a shell script against an image in the simulator (docs/cli.md).

The offline counterpart of virt-customize's ``--run``. The script (``-c COMMANDS``, or a
SCRIPT file read on the host -- as data: it is never executed on the host) is interpreted by
:func:`nuwa.script.interp.run_script` against an overlay over the image's root filesystem.
Its stdout and stderr are printed as the script produced them and its exit status becomes
Nuwa's. Commands that cannot be simulated go into the image's first-boot job
(:mod:`nuwa.script.firstboot`); when the script's use of them forces the whole script to
first boot, its effects are rolled back and the whole script is stored in the job instead.
The changes are committed into a new qcow2 overlay at ``--output`` or, with ``--in-place``,
into the image (:mod:`nuwa.cmd.writeout`); ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import base64
import json
import os
import sys

from nuwa.errors import EXIT_USAGE, InvalidInputError

#: the environment a ``nuwa sh`` script starts with (a root login shell's basics, C locale)
SH_ENVIRONMENT = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C",
    "SHELL": "/bin/sh",
    "USER": "root",
    "LOGNAME": "root",
}
#: a SCRIPT file larger than this is refused (scripts are read into memory)
MAX_SCRIPT = 16 << 20


def read_script(args) -> tuple[str, str, list[str], bool]:
    """(text, $0, positional parameters, bash mode) from ``-c`` or the SCRIPT file on the host."""
    if args.commands is not None:
        if args.script_args:
            raise InvalidInputError("give either -c COMMANDS or a SCRIPT file, not both "
                                    f"(with -c there are no ARGs; got {args.script_args[0]!r})")
        return args.commands, "sh", [], False
    if not args.script_args:
        raise InvalidInputError("nothing to run: give -c COMMANDS or a SCRIPT file")
    path, *argv = args.script_args
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SCRIPT + 1)
    except FileNotFoundError:
        raise InvalidInputError("no such script file", where=path) from None
    except IsADirectoryError:
        raise InvalidInputError("the script is a directory", where=path) from None
    except OSError as e:
        raise InvalidInputError(f"cannot read the script ({e.strerror})", where=path) from None
    if len(data) > MAX_SCRIPT:
        raise InvalidInputError(f"script larger than {MAX_SCRIPT >> 20} MiB", where=path)
    text = data.decode("utf-8", "surrogateescape")
    first = text.split("\n", 1)[0]
    bash = first.startswith("#!") and "bash" in first
    return text, path, argv, bash


def _stream(data: bytes) -> dict:
    try:
        return {"text": data.decode("utf-8"), "encoding": "utf-8"}
    except UnicodeDecodeError:
        return {"text": base64.b64encode(data).decode("ascii"), "encoding": "base64"}


def _deferred_json(d) -> dict:
    return {"argv": d.argv, "cwd": d.cwd, "env": d.env, "umask": f"{d.umask:04o}", "stdin_size": len(d.stdin),
            "reason": d.reason, "line": d.line}


def _words(argv: list[str]) -> str:
    return " ".join(argv)[:200]


def summary_lines(r, job, added: list, image: str, target: str | None, in_place: bool, n_changes: int) -> list[str]:
    """The ``nuwa sh:`` lines printed on stderr after the script's own output."""
    c = r.record.counts
    out = [f"nuwa sh: {sum(c.values())} commands: {c.get('simulated', 0)} simulated, {c.get('dropped', 0)} dropped, "
           f"{c.get('deferred', 0)} deferred to first boot"]
    for e in r.record.entries:
        if e.classification == "dropped":
            out.append(f"nuwa sh: dropped: line {e.line}: {_words(e.argv)}: {e.reason}")
    if r.deferred_whole:
        out.append(f"nuwa sh: the whole script is deferred to first boot (its effects were undone): {r.reason}")
    else:
        for d in r.deferred_commands:
            out.append(f"nuwa sh: deferred: line {d.line}: {_words(d.argv)}: {d.reason}")
    if job is not None:
        how = ("activated by " + " and ".join(job.activation)) if job.activation else \
            "NOT activated: the image has neither systemd nor /etc/init.d; run /var/lib/nuwa/firstboot/run at boot"
        out.append(f"nuwa sh: first-boot job: {len(job.entries)} entries ({len(added)} new) in /var/lib/nuwa/firstboot, {how}")
    if target is None:
        out.append(f"nuwa sh: dry run: nothing written ({n_changes} paths would change)")
    elif in_place:
        out.append(f"nuwa sh: {n_changes} paths changed in {target} (in place)")
    else:
        out.append(f"nuwa sh: wrote {target} ({n_changes} paths changed; {image} unchanged)")
    return out


def run_sh(args) -> int:
    """``nuwa sh IMAGE [-c COMMANDS | SCRIPT] [ARG...] [--dry-run] [--output OUT | --in-place] [--json]``."""
    from nuwa.cmd.writeout import check_target, staged
    from nuwa.script.commands import default_models
    from nuwa.script.firstboot import FirstBootJob
    from nuwa.script.interp import run_script
    from nuwa.script.parser import ParseError, parse

    text, name, argv, bash = read_script(args)
    if not args.dry_run:
        check_target(args, "sh")
    try:
        parse(text, bash=bash)
    except ParseError as e:  # dash would print this and exit 2 before running anything
        msg = f"{name}: {e.line}: {e.dash_text()}\n".encode("utf-8", "surrogateescape")
        if args.json:
            print(json.dumps({"status": EXIT_USAGE, "stdout": _stream(b""), "stderr": _stream(msg),
                              "error": f"parse error: {e}", "written": None, "dry_run": args.dry_run}, indent=1))
        else:
            sys.stderr.buffer.write(msg)
            print("nuwa sh: the script does not parse; nothing was run or written", file=sys.stderr)
        return EXIT_USAGE
    except RecursionError:
        raise InvalidInputError("the script nests too deeply to parse", where=name) from None
    models = default_models()
    env = dict(SH_ENVIRONMENT)
    job, added = None, []
    with staged(args, "sh", dry_run=args.dry_run) as st:
        fs = st.fs
        sp = fs.savepoint()
        r = run_script(fs, text, argv, env=dict(env), name=name, bash=bash, models=models)
        if r.deferred_whole:
            fs.rollback_to(sp)
        else:
            fs.release(sp)
        if r.deferred_whole or r.deferred_commands:
            job = FirstBootJob.load(fs)
            added = job.add_result(r, text.encode("utf-8", "surrogateescape"), argv, env,
                                   os.path.basename(name) if name != "sh" else "nuwa-sh-c", cwd="/")
            job.write(fs, models)
        changes = fs.changes()
        target = st.target
    status = 0 if r.deferred_whole else r.status
    if args.json:
        doc = {
            "script": name, "args": argv, "status": None if r.deferred_whole else r.status,
            "stdout": _stream(r.stdout), "stderr": _stream(r.stderr),
            "deferred_whole": r.deferred_whole, "reason": r.reason,
            "record": r.record.to_json(),
            "deferred_commands": [] if r.deferred_whole else [_deferred_json(d) for d in r.deferred_commands],
            "firstboot": job.to_json() | {"new_entries": [e.id for e in added]} if job is not None else None,
            "changes": [c.to_json() for c in changes],
            "written": None if target is None else {"path": target, "in_place": bool(args.in_place)},
            "dry_run": args.dry_run,
        }
        print(json.dumps(doc, indent=1))
        return status
    if not r.deferred_whole:
        sys.stdout.buffer.write(r.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(r.stderr)
    sys.stderr.flush()
    for line in summary_lines(r, job, added, args.image, target, bool(args.in_place), len(changes)):
        print(line, file=sys.stderr)
    return status
