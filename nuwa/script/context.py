"""The interface between the shell interpreter and command models.

A *command model* simulates one external program (``rm``, ``sed``, ``update-alternatives``...)
against the image's filesystem model. The interpreter finds a command through ``PATH`` in the
image, then calls the model its :class:`ModelSet` holds under the program's basename with an
:class:`Invocation`. The set is built explicitly by whoever creates the interpreter
(``nuwa.script.commands.default_models()`` for all of them) and passed in; nothing is
registered by importing a module. Nothing reaches the host: a model sees only ``inv.fs`` (a
:class:`nuwa.fs.model.FileSystem`, usually an overlay transaction) and the bytes it is given.

A model returns the exit status. When it cannot simulate an invocation exactly it raises
:class:`Defer`; when the invocation only matters to a running system (starting a service) it
raises :class:`Drop`. The interpreter records either and carries on (or defers the whole
script when the result is needed; see the deferral rules in ``nuwa.script``).
"""

from __future__ import annotations

import importlib
import os
import posixpath
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping, Protocol

from nuwa.fs.model import FileSystem

SIMULATED = "simulated"
DROPPED = "dropped"
DEFERRED = "deferred"


class Defer(Exception):
    """Raised by a model: this invocation cannot be simulated offline; run it at first boot."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Drop(Exception):
    """Raised by a model: this invocation only matters to a running system; skip and report.

    ``status`` is the exit status the script sees (0: as if the action succeeded).
    """

    def __init__(self, reason: str, status: int = 0):
        super().__init__(reason)
        self.reason = reason
        self.status = status


class CommandModel(Protocol):
    """A model: called with one :class:`Invocation`, returns the exit status (or raises
    :class:`Defer` / :class:`Drop`)."""

    def __call__(self, inv: "Invocation") -> int: ...


class LazyModel:
    """A command model named, not imported: ``module`` and ``attr``, imported by the
    :class:`ModelSet` that holds it when the model is first looked up. A patch runs a few dozen
    programs of the hundreds modelled; importing every family for each process cost more than
    the whole job of a small update."""

    __slots__ = ("module", "attr")

    def __init__(self, module: str, attr: str):
        self.module, self.attr = module, attr

    def resolve(self) -> CommandModel:
        return getattr(importlib.import_module(self.module), self.attr)

    def __repr__(self) -> str:
        return f"LazyModel({self.module}.{self.attr})"


def lazy_models(package: str, declared: Mapping[str, str]) -> dict[str, LazyModel]:
    """A family's ``MODELS``: ``declared`` maps a program's basename to ``"module.attr"``, a
    module of the family's ``package`` and the model in it, imported at first use."""
    out = {}
    for name, ref in declared.items():
        module, _, attr = ref.rpartition(".")
        out[name] = LazyModel(f"{package}.{module}", attr)
    return out


class ModelSet(Mapping[str, CommandModel]):
    """Which programs the interpreter can simulate: program basename -> model.

    A set is a value: it never changes after it is built, and :meth:`extended`, :meth:`without`
    and :meth:`only` return new sets, so two interpreters given different sets in one process
    cannot affect each other. A program whose basename is not in the set has no model: the
    interpreter defers it (and a model that runs another program, as update-rc.d runs
    systemctl, looks it up here too).
    """

    __slots__ = ("_models",)

    def __init__(self, models: Mapping[str, CommandModel] | Iterable[tuple[str, CommandModel]] = ()):
        self._models: dict[str, CommandModel] = dict(models)

    def __getitem__(self, name: str) -> CommandModel:
        model = self._models[name]
        if type(model) is LazyModel:  # imported at its first use (the set still reads as the same value)
            model = self._models[name] = model.resolve()
        return model

    def __contains__(self, name: object) -> bool:  # without importing the model
        return name in self._models

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"ModelSet({len(self._models)} models)"

    def extended(self, models: Mapping[str, CommandModel]) -> "ModelSet":
        """A new set with ``models`` added (replacing a model of the same name)."""
        return ModelSet({**self._models, **models})

    def without(self, *names: str) -> "ModelSet":
        """A new set without the models of ``names`` (those programs are then deferred)."""
        return ModelSet({k: v for k, v in self._models.items() if k not in names})

    def only(self, *names: str) -> "ModelSet":
        """A new set holding just the models of ``names`` (a name with no model is ignored)."""
        return ModelSet({k: v for k, v in self._models.items() if k in names})


class _LazyStdin:
    """``Invocation.stdin``: bytes, or a callable read on first access.

    A real program reads its standard input only if it wants to; a model that never looks
    at ``inv.stdin`` must not consume the input of the loop around it (``while read x; do
    ln -s ...; done``). The interpreter therefore passes a reader, called at most once.
    """

    def __set_name__(self, owner, name):
        self.slot = "_" + name

    def __get__(self, obj, objtype=None):
        if obj is None:
            return b""
        value = obj.__dict__.get(self.slot, b"")
        if callable(value):
            value = obj.__dict__[self.slot] = value()
        return value

    def __set__(self, obj, value):
        obj.__dict__[self.slot] = value


@dataclass
class Invocation:
    """One call of an external command, as the interpreter hands it to a model."""

    argv: list[str]
    fs: FileSystem
    cwd: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    stdin: bytes = _LazyStdin()
    #: the live standard input description (``nuwa.script.fdtable.Desc``) when the interpreter
    #: runs the model, else None: a model that execs a program without reading its input
    #: (``env``) hands it on, so the program reads the very pipe (a debconf frontend's replies)
    stdin_fd: object = None
    stdout: bytearray = field(default_factory=bytearray)
    stderr: bytearray = field(default_factory=bytearray)
    umask: int = 0o022
    #: lets a model run another command (``xargs``, ``find -exec``, ``dpkg-maintscript-helper``)
    #: through the interpreter's own lookup: ``run(argv, stdin) -> (status, stdout, stderr)``;
    #: an optional third argument ``env`` replaces the environment the program receives, an
    #: optional fourth ``cwd`` is its working directory (``find -execdir``), an optional fifth
    #: ``fs`` the filesystem view it runs on (``su``: another user's, ``loginutils.credfs``)
    run: Callable[..., tuple[int, bytes, bytes]] | None = None
    #: lets a model start a shell script of the image as its child, connected to descriptors
    #: the model provides (debconf's frontend runs the maintainer script with its protocol
    #: pipes as stdin and stdout): ``spawn(path, argv, env, fds) -> status``; see
    #: ``nuwa.script.external.ExternalCommands.spawn_script``
    spawn: Callable[..., int] | None = None
    #: per-run state shared by models (debconf database handle, ucf registry, ...)
    state: dict = field(default_factory=dict)
    #: the interpreter's models: a model that runs another program (update-rc.d running
    #: systemctl) finds it here, so a restricted set restricts the nested call too
    models: ModelSet = field(default_factory=ModelSet)

    @property
    def name(self) -> str:
        return posixpath.basename(self.argv[0]) if self.argv else ""

    def path(self, p: str) -> str:
        """An argument path made absolute against the simulated working directory."""
        return p if p.startswith("/") else posixpath.join(self.cwd, p)

    def out(self, text: str | bytes) -> None:
        self.stdout += text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text

    def out_buffer(self, buf: bytearray) -> None:
        """Append ``buf`` to standard output, taking it over (not copying it) when nothing was
        written yet: an archive of tens of MB is then held once, not twice."""
        if self.stdout:
            self.stdout += buf
        else:
            self.stdout = buf

    def err(self, text: str | bytes) -> None:
        self.stderr += text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text

    def fail(self, msg: str, status: int = 1) -> int:
        """Print ``prog: msg`` on stderr (as coreutils do) and return ``status``."""
        self.err(f"{self.name}: {msg}\n")
        return status


def strerror(err: OSError) -> str:
    """The text coreutils print for an errno ("No such file or directory")."""
    return os.strerror(err.errno) if err.errno else str(err)
