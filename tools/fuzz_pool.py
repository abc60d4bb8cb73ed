"""Persistent fuzz workers: many inputs per forked child, each under a time limit.

A fresh ``fork`` per input costs more than most inputs (a shell script parses in well under a
millisecond; the fork, the pipe and the wait take a few). A :class:`Worker` is a child forked
once from the preloaded parent that runs inputs one after the other, reading each job from a
pipe and writing its outcomes back (4-byte length, then JSON). The parent keeps the limits:

- **time**: a worker that has not answered within the per-input limit is killed by its PID and
  the input is recorded as a hang; a new worker takes its place;
- **memory**: the worker's address space is limited (``RLIMIT_AS``) once, at its start;
- **state**: a worker exits after any outcome that was not a clean return (an exception may
  leave module state half-changed: the next input must not inherit it), after ``recycle``
  inputs, and on end of input; the parent then forks a new one. A worker that dies without an
  answer (a signal, ``os._exit`` in a library) is recorded as ``ChildDied`` with its status.

:class:`Pool` drives several workers at once (``--jobs``), each with its own work directory, so
the parent's checks (the input unchanged, nothing left but the named output) stay per input.
"""

from __future__ import annotations

import json
import os
import resource
import select
import signal
import struct
import sys
import time


#: the parent's ends of every worker's pipes: a newly forked worker closes those of the others,
#: or a worker told to stop (its job pipe closed) would never see the end of its input
_PARENT_FDS: set[int] = set()


def _read_exact(fd: int, n: int) -> bytes | None:
    """``n`` bytes from ``fd``, or None at end of file (blocking)."""
    parts, got = [], 0
    while got < n:
        b = os.read(fd, n - got)
        if not b:
            return None
        parts.append(b)
        got += len(b)
    return b"".join(parts)


def _write_msg(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    view = memoryview(struct.pack("<I", len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _serve(rfd: int, wfd: int, limit_mib: int, run_job) -> None:
    """The worker's loop (in the child): run jobs until end of input or an unclean outcome."""
    code = 0
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit_mib << 20, limit_mib << 20))
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        sys.setrecursionlimit(5000)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when a worker ends
        while True:
            head = _read_exact(rfd, 4)
            if head is None:
                break
            job = json.loads(_read_exact(rfd, struct.unpack("<I", head)[0]))
            try:
                outs = run_job(job)
            except BaseException as err:  # noqa: BLE001 - reported, then this worker ends
                outs = [{"exc": type(err).__name__, "where": "tools/fuzz_pool.py", "msg": str(err)[:200],
                         "cmd": "worker"}]
            _write_msg(wfd, outs)
            if any("exc" in o for o in outs):
                break
    except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
        code = 70
    os._exit(code)


class Worker:
    """One persistent child; see the module docstring."""

    def __init__(self, work: str, limit_mib: int, recycle: int, run_job):
        self.work, self.limit_mib, self.recycle, self.run_job = work, limit_mib, recycle, run_job
        self.pid = 0
        self.done = 0
        self.job = None
        self.deadline = 0.0
        self.buf = b""
        os.makedirs(work, exist_ok=True)

    def start(self) -> None:
        """Fork the child (from the preloaded parent: imports are shared copy-on-write)."""
        jr, jw = os.pipe()
        rr, rw = os.pipe()
        pid = os.fork()
        if pid == 0:
            for fd in _PARENT_FDS | {jw, rr}:
                os.close(fd)
            _serve(jr, rw, self.limit_mib, self.run_job)
        os.close(jr)
        os.close(rw)
        _PARENT_FDS.update((jw, rr))
        self.pid, self.jobs, self.results, self.done, self.buf = pid, jw, rr, 0, b""

    def stop(self, kill: bool = False) -> int:
        """End the child (killed by its PID if ``kill``); its wait status."""
        if not self.pid:
            return 0
        if kill:
            os.kill(self.pid, signal.SIGKILL)
        for fd in (self.jobs, self.results):
            _PARENT_FDS.discard(fd)
            try:
                os.close(fd)
            except OSError:
                pass
        _pid, status = os.waitpid(self.pid, 0)
        self.pid = 0
        return status

    def submit(self, job: dict, timeout: float) -> None:
        """Hand ``job`` to the child; its answer is due within ``timeout`` seconds."""
        if not self.pid or self.done >= self.recycle:
            self.stop()
            self.start()
        self.job, self.deadline, self.buf = job, time.monotonic() + timeout, b""
        _write_msg(self.jobs, job)

    def read_ready(self) -> list | None:
        """Consume what the child wrote; its outcomes once complete, else None."""
        b = os.read(self.results, 1 << 16)
        if not b:  # the child ended without a whole answer
            status = self.stop()
            self.job = None
            return [{"exc": "ChildDied", "where": f"status {status}", "msg": "", "cmd": "worker"}]
        self.buf += b
        if len(self.buf) < 4:
            return None
        n = struct.unpack("<I", self.buf[:4])[0]
        if len(self.buf) < 4 + n:
            return None
        outs = json.loads(self.buf[4 : 4 + n])
        self.job, self.buf = None, b""
        self.done += 1
        if any("exc" in o for o in outs):
            self.stop()  # it exits by itself after an unclean outcome
        return outs

    def hang(self, timeout: float) -> list:
        """The child overran its time: kill it; the outcome to record."""
        self.stop(kill=True)
        self.job = None
        return [{"exc": "Hang", "where": f"more than {timeout:g} s", "msg": "", "cmd": "worker"}]


class Pool:
    """``jobs`` workers, fed by ``next_job(worker)`` and drained into ``finish(worker, job, outs)``."""

    def __init__(self, base: str, jobs: int, limit_mib: int, run_job, recycle: int = 500):
        self.workers = [Worker(os.path.join(base, f"w{i}"), limit_mib, recycle, run_job) for i in range(jobs)]

    def run(self, next_job, finish, timeout: float) -> None:
        """Keep every worker busy until ``next_job`` returns None, then wait for the last answers."""
        idle = list(self.workers)
        busy: dict[int, Worker] = {}
        more = True
        try:
            while True:
                while more and idle:
                    w = idle.pop()
                    job = next_job(w)
                    if job is None:
                        more = False
                        idle.append(w)
                        break
                    w.submit(job, timeout)
                    busy[w.results] = w
                if not busy:
                    return
                now = time.monotonic()
                wait = max(0.0, min(w.deadline for w in busy.values()) - now)
                ready, _, _ = select.select(list(busy), [], [], wait)
                for fd in ready:
                    w = busy[fd]
                    job = w.job
                    outs = w.read_ready()
                    if outs is not None:
                        del busy[fd]
                        idle.append(w)
                        finish(w, job, outs)
                now = time.monotonic()
                for fd, w in list(busy.items()):
                    if w.deadline <= now:
                        job = w.job
                        del busy[fd]
                        outs = w.hang(timeout)
                        idle.append(w)
                        finish(w, job, outs)
        finally:
            for w in self.workers:
                w.stop(kill=True)
