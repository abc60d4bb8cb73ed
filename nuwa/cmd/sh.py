"""``nuwa sh``: run a shell script against an image in the simulator (docs/cli.md).

The offline counterpart of virt-customize's ``--run``. The script (``-c COMMANDS``, or a
SCRIPT file read on the host -- as data: it is never executed on the host) goes to
:meth:`nuwa.api.Image.sh` (:mod:`nuwa.patch.shjob`), which interprets it against an overlay
over the image's root filesystem. Its stdout and stderr are printed as the script produced
them and its exit status becomes Nuwa's; the ``nuwa sh:`` summary follows on stderr. The
changes are committed into a new qcow2 overlay at ``--output`` or, with ``--in-place``, into
the image; ``--dry-run`` writes nothing.
"""

from __future__ import annotations

import json
import sys

import nuwa
from nuwa.errors import EXIT_USAGE, InvalidInputError
from nuwa.patch.shjob import parse_check, stream_json
from nuwa.patch.staging import check_target
from nuwa.script.parser import ParseError

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


def run_sh(args) -> int:
    """``nuwa sh IMAGE [-c COMMANDS | SCRIPT] [ARG...] [--dry-run] [--output OUT | --in-place] [--json]``."""
    text, name, argv, bash = read_script(args)
    if not args.dry_run:
        check_target("sh", args.output, args.in_place)
    try:
        parse_check(text, bash, name)
    except ParseError as e:  # dash would print this and exit 2 before running anything
        msg = f"{name}: {e.line}: {e.dash_text()}\n".encode("utf-8", "surrogateescape")
        if args.json:
            print(json.dumps({"status": EXIT_USAGE, "stdout": stream_json(b""), "stderr": stream_json(msg),
                              "error": f"parse error: {e}", "written": None, "dry_run": args.dry_run}, indent=1))
        else:
            sys.stderr.buffer.write(msg)
            print("nuwa sh: the script does not parse; nothing was run or written", file=sys.stderr)
        return EXIT_USAGE
    with nuwa.open(args.image, writable=bool(args.in_place and not args.dry_run), partition=args.partition,
                    unsafe_in_place=args.unsafe_in_place) as image:
        run = image.sh(text, args=argv, name=name, bash=bash, output=args.output, in_place=args.in_place,
                       dry_run=args.dry_run)
    if args.json:
        print(json.dumps(run.to_json(), indent=1))
        return run.status
    if not run.result.deferred_whole:
        sys.stdout.buffer.write(run.stdout)
        sys.stdout.flush()
        sys.stderr.buffer.write(run.stderr)
    sys.stderr.flush()
    for line in run.summary_lines():
        print(line, file=sys.stderr)
    return run.status
