"""Redirections (XCU 2.7) for the interpreter: a mixin of :class:`nuwa.script.interp.Shell`.

A redirection list is applied to the shell's fd table and undone afterwards (except for
``exec``); each target is an image path opened through the filesystem model, a
here-document, a duplicated descriptor or ``/dev/null``/``/dev/std*``/``/dev/fd/N``. Failures
print dash's wording (``cannot create X: Directory nonexistent``); the caller decides
whether they are fatal (special builtins) or give status 2. Reading the booted kernel's
``/dev/zero`` or ``/dev/urandom`` is endless: a simple command whose input it is runs as a
pipeline stage (:func:`nuwa.script.endless.device_input`); any other such redirection defers
the script whole.
"""

from __future__ import annotations

import os

from nuwa.script import ast as A
from nuwa.script.endless import memory_device
from nuwa.script.expand import ExpansionError
from nuwa.script.fdtable import Desc, InBuf, NullDesc, open_file
from nuwa.script.record import ScriptDeferred


class RedirError(Exception):
    """A redirection failed; ``str()`` is dash's message."""


_ERRMSG = {2: "No such file", 20: "Not a directory"}


def _redir_message(err: OSError, path: str, creating: bool) -> str:
    """dash's ``errmsg(errno, E_OPEN|E_CREAT)`` wording."""
    if err.errno == 2:
        text = "Directory nonexistent" if creating else "No such file"
    else:
        text = os.strerror(err.errno) if err.errno else str(err)
    return f"cannot {'create' if creating else 'open'} {path}: {text}"


def _all_quoted(word: A.Word) -> bool:
    return all(isinstance(p, A.Lit) and p.quoted for p in word.parts)


class Redirections:
    """Mixin: ``redirect``/``restore`` over ``self.fds`` (needs ``exp``, ``fs``, ``umask``...)."""

    def redirect(self, redirs: list[A.IoRedirect]):
        """Apply redirections; returns what :meth:`restore` needs, or RedirError after
        printing dash's message (the caller decides whether that is fatal)."""
        saved: list[tuple[int, Desc | None]] = []
        try:
            for r in redirs:
                self._redirect_one(r, saved)
        except RedirError as e:
            self.restore(saved)
            self.error(str(e))
            return RedirError
        except ExpansionError as e:
            self.restore(saved)
            self.fatal(str(e), e.status)
        return saved

    def _redirect_one(self, r: A.IoRedirect, saved: list) -> None:
        op = r.op
        fd = r.fd if r.fd is not None else (0 if op in ("<", "<<", "<<-", "<>", "<&", "<<<") else 1)
        if fd > 9:
            raise RedirError(f"{fd}: Bad file descriptor")
        if op in ("<<", "<<-"):
            body = r.heredoc
            text = self.exp.string(body) if body is not None and not _all_quoted(body) else (body.parts[0].text if body and body.parts else "")
            new: Desc | None = InBuf(text.encode("utf-8", "surrogateescape"))
        elif op == "<<<":
            new = InBuf((self.exp.string(r.target) + "\n").encode("utf-8", "surrogateescape"))
        else:
            target = self.exp.string(r.target)
            if op in ("<&", ">&"):
                if target == "-":
                    new = None
                elif target.isdigit():
                    src = int(target)
                    if src not in self.fds:
                        raise RedirError(f"{target}: Bad file descriptor")
                    new = self.fds[src]
                elif op == ">&" and r.fd is None:  # bash/dash: >&file is >file 2>&1
                    new = self._open(target, ">")
                    saved.append((2, self.fds.get(2)))
                    self.fds[2] = new
                else:
                    raise RedirError(f"{target}: Bad file descriptor" if op == "<&" else f"{target}: Bad file descriptor")
            else:
                new = self._open(target, op)
                if op == "&>":
                    saved.append((2, self.fds.get(2)))
                    self.fds[2] = new
        saved.append((fd, self.fds.get(fd)))
        if new is None:
            self.fds.pop(fd, None)
        else:
            self.fds[fd] = new

    def _open(self, target: str, op: str) -> Desc:
        dev = {"/dev/null": "null", "/dev/stdout": 1, "/dev/stderr": 2, "/dev/stdin": 0}.get(target)
        if target.startswith("/dev/fd/") and target[8:].isdigit():
            dev = int(target[8:])
        if dev == "null":
            return NullDesc()
        if isinstance(dev, int):
            if dev not in self.fds:
                raise RedirError(f"cannot open {target}: No such device or address")
            return self.fds[dev]
        if self.deferred and op in ("<", "<>"):
            pending = self.pending_outputs()
            if self.abspath(target) in pending:
                raise ScriptDeferred(f"{target} is read, but deferred `{pending[self.abspath(target)]}` writes it "
                                     "only at boot", self.lineno)
        if op in ("<", "<>") and memory_device(self.fs, self.abspath(target)) in ("zero", "random"):
            # the booted kernel's endless device: read as a pipeline's stage only (endless.py)
            raise ScriptDeferred(f"reading {target} (endless) through this redirection is not modelled", self.lineno)
        try:
            return open_file(self.fs, self.abspath(target), op, self.umask, "C" in self.opts, self.limits)
        except OSError as e:
            raise RedirError(_redir_message(e, target, op != "<")) from None

    def restore(self, saved) -> None:
        for fd, old in reversed(saved):
            if old is None:
                self.fds.pop(fd, None)
            else:
                self.fds[fd] = old
