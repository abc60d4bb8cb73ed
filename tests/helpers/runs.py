"""One program run both ways, for the differential tests of command models.

The real program runs on the host (cwd in a scratch tree, or pointed at it with ``--root``)
or in a chroot of it; the model runs through :class:`nuwa.fs.hostdir.HostDirFS` with the
scratch tree as the image root and cwd ``/``. Both give ``(status, stdout, stderr)`` as
bytes, so a harness compares them as they are. What differs between harnesses -- the
environment, the umask, how the program finds the tree, how a model's nested commands run --
is a parameter here; the harnesses (``tests/script/*harness.py``, ``dpkghelpers``,
``debconf_oracle``) only bind their own values.
"""

from __future__ import annotations

import os
import subprocess

from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Invocation

_DEFAULT_MODELS = None


def run_real(argv: list[str], *, env: dict | None, stdin: bytes | None = b"", cwd: str | None = None,
             chroot: str | None = None, umask: int | None = None, timeout: float = 60) -> tuple[int, bytes, bytes]:
    """Run the real program: in ``cwd``, or chrooted into ``chroot`` first; with exactly ``env``
    (None: ours); ``stdin`` None is ``/dev/null`` (a program may tell it from an empty pipe);
    ``umask`` set in the child before exec."""
    if chroot is not None:
        argv = [tool("chroot"), chroot, *argv]
    p = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, timeout=timeout,
                       **({"stdin": subprocess.DEVNULL} if stdin is None else {"input": stdin}),
                       preexec_fn=None if umask is None else (lambda: os.umask(umask)))
    return p.returncode, p.stdout, p.stderr


def run_model(root: str, argv: list[str], *, env: dict, stdin: bytes | None = None, umask: int | None = None,
              run=None, models=None, fs=None, name: str | None = None, cwd: str = "/") -> tuple[int, bytes, bytes]:
    """Run the model of ``argv[0]`` (by its basename, or ``name``) on ``root`` seen as the image
    (``fs``: a HostDirFS over it unless given), in ``cwd`` (``/`` unless given).

    ``run`` is what the model calls for a nested command (``xargs``, ``find -exec``, ``dpkg``
    calling a helper); ``stdin``/``umask`` None leave the :class:`Invocation` defaults (a
    lazily read empty stdin, 022). ``models`` is the harness's model set (the full default
    set if None).
    """
    global _DEFAULT_MODELS
    if models is None:
        models = _DEFAULT_MODELS = _DEFAULT_MODELS or default_models()
    extra = {k: v for k, v in (("stdin", stdin), ("umask", umask)) if v is not None}
    inv = Invocation(argv=list(argv), fs=fs or HostDirFS(root, writable=True), cwd=cwd, env=dict(env), run=run,
                     models=models, **extra)
    status = models[name or os.path.basename(argv[0])](inv)
    return status, bytes(inv.stdout), bytes(inv.stderr)


def strip_root(data: bytes, root: str, bare: bytes = b"/") -> bytes:
    """The scratch root's path taken out of a real program's output, so it reads as the image's:
    ``ROOT/x`` becomes ``/x`` and a bare ``ROOT`` becomes ``bare``."""
    r = root.encode()
    return data.replace(r + b"/", b"/").replace(r, bare)
