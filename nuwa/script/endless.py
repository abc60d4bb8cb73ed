"""Endless streams written into a pipeline: ``cat /dev/urandom | tr -dc A-Za-z0-9 | head -c33``.

A pipeline's stages run one after the other with the bytes between them buffered
(:meth:`nuwa.script.interp.Shell.run_pipeline`). A program that never stops writing (``cat``
of ``/dev/zero``, ``/dev/urandom`` or ``/dev/random``; ``yes``) cannot be buffered, so its
model raises :class:`EndlessOutput` carrying the stream (:class:`EndlessStream`) instead of
output. In the real pipeline such a writer dies of SIGPIPE (status 141) once a reader
downstream has stopped reading and exited, and every streaming filter between them dies the
same way at its next write; dash has no pipefail, so the pipeline's status is the last
stage's. The pipeline ends only if some stage stops reading on its own.

The rule (:func:`run_endless`): the stages after the writer run on a finite prefix of the
stream, twice -- on N bytes and on 2N bytes of the *same* stream -- each time in a fresh
:class:`nuwa.fs.overlay.Overlay` over the shell's filesystem with the shell's outputs
captured, so nothing of a try is seen until it is accepted. A try is accepted only if

- following the stream from the writer, each stage is either a *terminator* -- it stopped
  reading before the end of its input (it never read it, or the shell's ``read`` took a
  prefix), or its model declares ``pipe_stop(argv, data)`` and says it exits after a number
  of bytes that the prefix holds (``head -c 33``; None: more than ``data`` holds; ``NEVER``:
  this command line reads to the end) -- or a *streaming filter* whose model declares
  ``pipe_streams`` (``tr``, ``cat``, ``cut``: they write as they read, so they die of SIGPIPE
  at their next write) whose output kept growing from N to 2N bytes of input; the first
  terminator ends the endless part (what it writes is finite);
- the two tries agree exactly from the terminator on: every later stage's status and output,
  the bytes written to the shell's stdout and stderr, the commands run, and the changes to
  the filesystem (times aside); so the result provably does not depend on where the stream
  was cut;
- no command of a try was deferred, used a descriptor other than 0-2 of the shell (debconf's
  fd 3: its effects could not be undone) or the run's model state (not undone either).

When a terminator needs more than the prefix (``head -c 5000``) or the two tries disagree,
the prefix grows (up to ``MAX_PREFIX``); a stage that reads the stream to its end (``wc -c``,
``sort``, any program whose model declares neither) or a filter that stops writing
(``tr -d '\\0'`` of ``/dev/zero``) means the real pipeline would never end: the whole script
is deferred with that reason, as the first-boot job is where it would hang. The accepted try
(2N) is committed and its captured output written; the writer and the filters before the
terminator get status 141.

Random bytes come from the host's ``os.urandom`` with no seed, for the reason given in
:mod:`nuwa.script.commands.coreutils.ddcmd`: a secret made offline must differ from image to
image exactly as one made at boot would.
"""

from __future__ import annotations

import os
import posixpath
import stat as _stat
from collections.abc import MutableMapping

from nuwa.fs.overlay import Overlay
from nuwa.script import ast as A
from nuwa.script.context import SIMULATED, Invocation
from nuwa.script.fdtable import Desc, InBuf, OutBuf
from nuwa.script.record import CommandRecord, ScriptDeferred
from nuwa.script.entropy import random_bytes

#: the booted kernel's memory devices (drivers/char/mem.c): name -> (major, minor)
KERNEL_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/random": (1, 8), "/dev/urandom": (1, 9)}
#: the status of a process killed by SIGPIPE, as the shell reports it (128 + 13)
SIGPIPE_STATUS = 141
#: what a model's ``pipe_stop`` returns for a command line that reads its input to the end
NEVER = -1
#: the first prefix tried, and the largest (each try also runs on twice as much)
FIRST_PREFIX = 4096
MAX_PREFIX = 1 << 20


class EndlessStream:
    """An endless byte stream: ``head`` (bytes written before it), then ``pattern`` repeated
    (``/dev/zero``: one zero byte; ``yes``: ``y\\n``), or random bytes when ``pattern`` is None.

    ``take(n)`` always returns a prefix of what a larger ``take`` returns: random bytes are
    drawn once and kept, so two tries see the same stream cut at two places.
    """

    def __init__(self, what: str, pattern: bytes | None, head: bytes = b""):
        self.what = what
        self.pattern = pattern
        self.head = bytes(head)
        self._random = bytearray()

    def take(self, n: int) -> bytes:
        """The first ``n`` bytes of the stream."""
        body = n - len(self.head)
        if body <= 0:
            return self.head[:n]
        if self.pattern is None:
            if len(self._random) < body:
                self._random += random_bytes(body - len(self._random))
            return self.head + bytes(self._random[:body])
        reps = -(-body // len(self.pattern))
        return self.head + (self.pattern * reps)[:body]


def memory_device(fs, path: str) -> str | None:
    """The kernel memory device the absolute ``path`` names in the booted guest ("null",
    "zero", "random"), or None: a dormant image's ``/dev`` may lack the node (devtmpfs makes
    it at boot); an entry the image does hold counts only if it is that character device."""
    if path not in KERNEL_DEVICES:
        return None
    try:
        st = fs.stat(path)
    except OSError:
        st = None
    if st is None or (_stat.S_ISCHR(st.st_mode) and os.major(st.st_rdev) == 1
                      and os.minor(st.st_rdev) == KERNEL_DEVICES[path][1]):
        return {"/dev/null": "null", "/dev/zero": "zero"}.get(path, "random")
    return None


def device_stream(kind: str, name: str) -> EndlessStream:
    """The endless stream of the kernel's zero or random device (``kind`` from
    :func:`memory_device`), named ``name`` in messages."""
    return EndlessStream(name, b"\0" if kind == "zero" else None)


class EndlessOutput(ScriptDeferred):
    """Raised by a model whose program would write ``stream`` without end.

    Caught by the pipeline when the model's standard output is the pipe to the next stage of
    a pipeline whose stage is that one simple command; anywhere else it stays what it is, a
    reason to defer the whole script (the program would not end there either).
    """

    def __init__(self, inv: Invocation, stream: EndlessStream):
        super().__init__(f"`{inv.name}` writes {stream.what} without end, other than as a pipeline's own"
                         " stage writing into the pipe (the only place where its end is modelled)")
        self.argv = list(inv.argv)
        self.stream = stream
        # the shell that called the model (Invocation.run is its bound method): where the
        # output went and how deep the call was, so the pipeline accepts only its own stage
        shell = getattr(inv.run, "__self__", None)
        self.out = shell.fds.get(1) if shell is not None else None
        self.depth = shell.depth if shell is not None else None

    def cut_by(self, cmd, out: Desc, depth: int) -> bool:
        """Is this the stage ``cmd`` itself (a simple command, not a function or a nested
        program) writing straight into the pipe ``out``, in the stage's subshell at ``depth``?"""
        return isinstance(cmd, A.SimpleCommand) and self.out is out and self.depth == depth


class _Guard(Desc):
    """A descriptor of the shell that a try may not use: its effects (debconf's protocol on
    fd 3, a file opened by ``exec``) are outside the try's overlay and could not be undone."""

    used = True

    def __init__(self, fd: int, why: str):
        self.fd, self.why = fd, why
        self.usage = f"fd {fd}"

    def _refuse(self):
        raise ScriptDeferred(f"{self.why}: a command fed by it uses fd {self.fd}")

    def write(self, data: bytes) -> None:
        self._refuse()

    def read(self, n: int = -1) -> bytes:
        self._refuse()

    def readline(self) -> bytes:
        self._refuse()


class _Watched(MutableMapping):
    """The run's model state as a try sees it: any use is noted (it is not undone)."""

    def __init__(self, state: dict):
        self.state, self.touched = state, False

    def __getitem__(self, k):
        self.touched = True
        return self.state[k]

    def __setitem__(self, k, v):
        self.touched = True
        self.state[k] = v

    def __delitem__(self, k):
        self.touched = True
        del self.state[k]

    def __iter__(self):
        self.touched = True
        return iter(self.state)

    def __len__(self):
        self.touched = True
        return len(self.state)


class _Try:
    """One run of the stages after the writer on a prefix of the stream."""

    def __init__(self):
        self.inputs: list[bytes] = []
        self.consumed: list[int] = []
        self.outputs: list[bytes] = []
        self.statuses: list[int] = []
        self.programs: list[tuple[list[str], str] | None] = []  # (argv, kind) of a one-command stage
        self.entries: list = []
        self.captures: list[tuple[Desc, OutBuf]] = []
        self.overlay: Overlay | None = None

    def effects(self) -> list:
        """The try's changes to the filesystem, times left out (they are the clock's)."""
        out = []
        for e in self.overlay.changes(times=False):
            sides = [None if s is None else {k: v for k, v in s.to_json().items() if k != "mtime_ns"}
                     for s in (e.a, e.b)]
            out.append((e.path, e.status, tuple(e.changes), sides))
        return out

    def captured(self) -> list[bytes]:
        return [bytes(buf.data) for _, buf in self.captures]


def _run_try(sh, rest: list, data: bytes, why: str) -> _Try:
    """Run ``rest`` (the stages after the writer) on ``data`` in a fresh overlay, outputs captured."""
    t = _Try()
    t.overlay = Overlay(sh.fs)
    fds: dict = {}
    caps: dict[int, OutBuf] = {}
    for fd, desc in sh.fds.items():
        if fd in (1, 2):
            if id(desc) not in caps:
                buf = OutBuf(sh.limits, desc.usage)
                buf.used = desc.used
                caps[id(desc)] = buf
                t.captures.append((desc, buf))
            fds[fd] = caps[id(desc)]
        elif fd != 0:
            fds[fd] = _Guard(fd, why)
    state = _Watched(sh.model_state)
    saved = (sh.fs, sh.fds, sh.model_state)
    marks = (len(sh.record.entries), dict(sh.record.counts), len(sh.deferred))
    sh.fs, sh.fds, sh.model_state = t.overlay, fds, state
    try:
        for j, cmd in enumerate(rest):
            sh.lineno = getattr(cmd, "line", sh.lineno)
            inp = InBuf(data)
            stage_fds = {0: inp}
            out = None
            if j < len(rest) - 1:
                out = stage_fds[1] = OutBuf(sh.limits, "piped to the next command")
            first = len(sh.record.entries)
            st = sh.run_subshell(cmd, stage_fds)
            added = sh.record.entries[first:]
            t.inputs.append(data)
            t.consumed.append(inp.pos)
            t.statuses.append(st)
            t.programs.append((list(added[0].argv), added[0].kind)
                              if isinstance(cmd, A.SimpleCommand) and len(added) == 1 else None)
            data = bytes(out.data) if out is not None else b""
            t.outputs.append(data)
    finally:
        sh.fs, sh.fds, sh.model_state = saved
    t.entries = [(e.line, tuple(e.argv), e.kind, e.classification, e.reason, e.status)
                 for e in sh.record.entries[marks[0]:]]
    if len(sh.deferred) > marks[2]:
        d = sh.deferred[marks[2]]
        raise ScriptDeferred(f"{why}: `{d.argv[0]}` fed by it would be deferred ({d.reason})", sh.lineno)
    if state.touched:
        raise ScriptDeferred(f"{why}: a command fed by it uses the run's model state", sh.lineno)
    return t


def _undo(sh, marks) -> None:
    """Forget a try's command records (its overlay is simply dropped)."""
    del sh.record.entries[marks[0]:]
    sh.record.counts.clear()
    sh.record.counts.update(marks[1])


def _model_of(sh, prog):
    """The model a one-command stage ran (None for a builtin, a function, anything else)."""
    if prog is None or prog[1] != "external" or len(prog[0]) >= 8:  # 8: the record's argv was cut
        return None
    return sh.models.get(posixpath.basename(prog[0][0]))


def _judge(sh, rest: list, a: _Try, b: _Try, first: int) -> tuple[int | None, str, bool]:
    """(index in ``rest`` of the terminator, "", _) when the try is accepted; else (None, why,
    final). ``first`` is the number of the pipeline's stage ``rest[0]`` (from 1)."""
    for j, cmd in enumerate(rest):
        name = (f"`{posixpath.basename(a.programs[j][0][0])}`" if a.programs[j]
                else f"stage {first + j} of the pipeline")
        if a.consumed[j] < len(a.inputs[j]):
            return j, "", True  # it stopped reading before the end of what it was given
        model = _model_of(sh, a.programs[j])
        argv = a.programs[j][0] if a.programs[j] else []
        stop = getattr(model, "pipe_stop", None)
        where = stop(argv, a.inputs[j]) if stop is not None else NEVER
        if where is not None and where >= 0:
            return j, "", True
        streams = getattr(model, "pipe_streams", None)
        if stop is None and streams is not None and streams(argv):
            if j == len(rest) - 1:
                break  # the last stage writes out of the pipeline: nothing after it stops reading
            if a.statuses[j] or b.statuses[j]:
                return None, f"{name} fails on it (status {a.statuses[j]})", True
            if len(b.outputs[j]) <= len(a.outputs[j]):
                return None, f"{name} stops writing, so nothing ever stops it: it would not end", True
            continue
        if where is None:
            return None, f"{name} does not stop reading it within {len(b.inputs[j])} bytes", False
        return None, f"{name} reads it to its end: the pipeline would not end", True
    return None, "no stage stops reading it: the pipeline would not end", True


def _agree(a: _Try, b: _Try, j: int) -> bool:
    """Do the two tries agree on everything from the terminator ``j`` on?"""
    if a.consumed[j] < len(a.inputs[j]):
        if a.consumed[j] != b.consumed[j] or a.inputs[j][:a.consumed[j]] != b.inputs[j][:b.consumed[j]]:
            return False
    return (a.statuses[j:] == b.statuses[j:] and a.outputs[j:] == b.outputs[j:] and a.entries == b.entries
            and a.captured() == b.captured() and a.effects() == b.effects())


def _settle(sh, rest: list, stream: EndlessStream, why: str, first: int, external_only: bool = False):
    """Run ``rest`` fed by ``stream`` until a try is accepted; returns (index in ``rest`` of the
    terminator, the statuses of ``rest`` from it on). ``first`` numbers ``rest[0]`` in the
    pipeline (from 1); ``external_only``: every stage must have been one command model (a lone
    command runs in the shell itself, which a try cannot stand in for with a builtin)."""
    reason = ""
    n = FIRST_PREFIX
    while n <= MAX_PREFIX:
        marks = (len(sh.record.entries), dict(sh.record.counts), len(sh.deferred))
        a = _run_try(sh, rest, stream.take(n), why)
        _undo(sh, marks)
        b = _run_try(sh, rest, stream.take(2 * n), why)
        if external_only and any(_model_of(sh, prog) is None for prog in a.programs):
            _undo(sh, marks)
            raise ScriptDeferred(f"{why}: only a program's model is run on a cut stream here", sh.lineno)
        j, reason, final = _judge(sh, rest, a, b, first)
        if j is not None:
            if _agree(a, b, j):
                b.overlay.commit()
                for desc, buf in b.captures:
                    if buf.data:
                        desc.write(bytes(buf.data))
                return j, b.statuses[j:]
            reason, final = "the result depends on where the stream is cut", False
        _undo(sh, marks)
        if final:
            break
        n *= 16
    raise ScriptDeferred(f"{why}: {reason}", sh.lineno)


def run_endless(sh, stages: list, i: int, exc: EndlessOutput) -> list[int]:
    """Finish a pipeline whose stage ``i`` raised ``exc``; returns the statuses of stages
    ``i`` to the last (see the module note for the rule). Raises :class:`ScriptDeferred` when
    the pipeline would not end or its result depends on where the stream is cut."""
    why = f"`{' '.join(exc.argv[:4])}` writes {exc.stream.what} without end into a pipe"
    sh.record.add(CommandRecord(sh.lineno, exc.argv[:8], "external", SIMULATED,
                                f"endless output ({exc.stream.what}) cut by the pipeline: killed by SIGPIPE",
                                SIGPIPE_STATUS))
    j, statuses = _settle(sh, stages[i + 1:], exc.stream, why, i + 2)
    return [SIGPIPE_STATUS] * (j + 1) + statuses


def device_input(sh, cmd):
    """``od -N 2 < /dev/urandom``: a simple command whose standard input is redirected from the
    kernel's zero or random device (a plain absolute path), every other redirection an output
    one on another descriptor. Returns the command without that redirection and the device's
    stream, or None. Reading it is the same as being the stage after ``cat DEVICE |``."""
    if not isinstance(cmd, A.SimpleCommand) or not cmd.redirects:
        return None
    ins = [r for r in cmd.redirects if r.op == "<" and r.fd in (None, 0)]
    if len(ins) != 1:
        return None
    path = ins[0].target.literal()
    if path is None or not path.startswith("/"):
        return None
    kind = memory_device(sh.fs, path)
    if kind not in ("zero", "random"):
        return None
    others = [r for r in cmd.redirects if r is not ins[0]]
    for r in others:
        if r.op not in (">", ">>", ">|", ">&") or (r.fd if r.fd is not None else 1) == 0 \
                or (r.op == ">&" and r.target.literal() in (None, "0")):
            return None
    return A.SimpleCommand(cmd.assigns, cmd.words, others, cmd.line), device_stream(kind, path)


def run_fed(sh, stages: list, i: int, fed) -> list[int]:
    """Run stages ``i`` to the last of a pipeline when stage ``i`` reads an endless device
    (``fed`` from :func:`device_input`); returns their statuses. A lone command (a pipeline of
    one) must be a program's model: a builtin or function would run in the shell itself."""
    cmd, stream = fed
    why = f"`{' '.join(w.text for w in cmd.words[:4])}` reads {stream.what} without end"
    j, statuses = _settle(sh, [cmd] + stages[i + 1:], stream, why, i + 1, external_only=len(stages) == 1)
    return [SIGPIPE_STATUS] * j + statuses
