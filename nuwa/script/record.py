"""The record of one script run: every command with its classification and reason.

The patch report consumes it: per script invocation, each command the interpreter met (in
order) is *simulated* (a builtin, a function, or a command model that had its effect on the
image), *dropped* (it only matters to a running system: starting or reloading a service) or
*deferred* (it cannot be simulated offline: it goes, with its context, into the first-boot
job). A deferred command keeps what the first-boot job needs to replay it: the expanded argv,
the working directory, the environment differences from what dpkg gives, the umask and the
bytes on its standard input.

When the output or status of a deferred command is used by the rest of the script (data
flow), the whole script invocation is deferred instead: :class:`ScriptDeferred` carries why.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

from nuwa.script.context import DEFERRED, DROPPED, SIMULATED

__all__ = ["SIMULATED", "DROPPED", "DEFERRED", "CommandRecord", "DeferredCommand", "RunRecord",
           "ScriptDeferred", "ScriptResult"]

#: at most this many command entries are kept per run (the counts stay exact)
MAX_ENTRIES = 20000
#: a recorded argument longer than this keeps its head and names its length and hash
MAX_ARG = 1024


def bounded_arg(a: str) -> str:
    """``a`` as a command record keeps it: whole up to :data:`MAX_ARG` characters, else its
    first ones, its length and a sha256 prefix of the whole (two different long arguments
    stay different records). ca-certificates' postinst echoes its list of certificates in
    each of thousands of commands: whole, they were 7 MB of a server update's records."""
    if len(a) <= MAX_ARG:
        return a
    return _bounded_long(a) if len(a) <= MEMO_ARG_MAX else _bounded(a)


#: long arguments up to this size have their bounded form remembered (8 of them at most:
#: the memo holds at most 8 MiB)
MEMO_ARG_MAX = 1 << 20


def _bounded(a: str) -> str:
    h = hashlib.sha256(a.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{a[:MAX_ARG - 64]}... [{len(a)} characters, sha256 {h}...]"


@functools.lru_cache(maxsize=8)
def _bounded_long(a: str) -> str:
    """:func:`_bounded`, remembered: ca-certificates passes the same list to command after
    command (hashing it each time was 1% of a server update's run, measured)."""
    return _bounded(a)


class ScriptDeferred(Exception):
    """The whole script invocation must run at first boot (``reason`` says why)."""

    def __init__(self, reason: str, line: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class CommandRecord:
    """One command the interpreter ran (or decided not to run)."""

    line: int
    argv: list[str]
    kind: str  # builtin, function, external, missing
    classification: str  # simulated, dropped, deferred
    reason: str = ""
    status: int = 0

    def to_json(self) -> dict:
        """What ``dataclasses.asdict`` gives, made directly (a kernel update's report holds
        thousands of these: the generic deep copy was a tenth of a second per thousand)."""
        return {"line": self.line, "argv": list(self.argv), "kind": self.kind,
                "classification": self.classification, "reason": self.reason, "status": self.status}


@dataclass
class DeferredCommand:
    """A deferred external command, with everything needed to replay it at first boot."""

    argv: list[str]
    cwd: str
    env: dict[str, str | None]
    umask: int
    stdin: bytes
    reason: str
    line: int
    #: the command's own output redirections, replayed with it at boot: (fd, op, target) with
    #: op ">" or ">>" and an absolute path, or ">&" and a file descriptor number
    redirects: tuple = ()


@dataclass
class RunRecord:
    """All commands of one script invocation, in order, plus per-class counts."""

    name: str = ""
    entries: list[CommandRecord] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {SIMULATED: 0, DROPPED: 0, DEFERRED: 0})
    dropped_entries: int = 0
    #: traps set for signals other than EXIT (recorded, never run)
    ignored_traps: list[str] = field(default_factory=list)

    def add(self, rec: CommandRecord) -> None:
        """Append an entry (kept up to MAX_ENTRIES, arguments bounded by :func:`bounded_arg`;
        counts are always exact)."""
        self.counts[rec.classification] = self.counts.get(rec.classification, 0) + 1
        if len(self.entries) < MAX_ENTRIES:
            if rec.argv and max(map(len, rec.argv)) > MAX_ARG:
                rec.argv = [bounded_arg(a) for a in rec.argv]
            self.entries.append(rec)
        else:
            self.dropped_entries += 1

    def to_json(self) -> dict:
        """A JSON-ready dict (for ``nuwa sh --json`` and the patch report)."""
        return {
            "name": self.name,
            "counts": dict(self.counts),
            "commands": [e.to_json() for e in self.entries],
            "entries_not_kept": self.dropped_entries,
            "ignored_traps": list(self.ignored_traps),
        }


@dataclass
class ScriptResult:
    """What :func:`nuwa.script.interp.run_script` returns.

    When ``deferred_whole`` is set the script must run at first boot as a whole; the effects
    it already had on the filesystem model must be discarded by the caller (roll back its
    overlay savepoint), since a script is never run twice.
    """

    status: int
    stdout: bytes
    stderr: bytes
    record: RunRecord
    deferred_commands: list[DeferredCommand]
    deferred_whole: bool = False
    reason: str = ""
