"""The ``nuwa`` command line, run the way a user runs it: ``python -m nuwa`` in a new
interpreter, with this checkout first on ``PYTHONPATH`` (the package may be installed from
another checkout, which must not be the one under test)."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.paths import REPO

#: the C locale and UTC: tools and ``nuwa`` then print the same bytes on every machine
C_ENV = {"LC_ALL": "C", "TZ": "UTC"}


def nuwa_env(extra: dict | None = None) -> dict[str, str]:
    """The environment ``nuwa`` runs with: ours, this checkout importable, plus ``extra``."""
    return {**os.environ, "PYTHONPATH": REPO, **(extra or {})}


def nuwa(*args, check: int | None = None, text: bool = True, cwd: str | None = None, env: dict | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``nuwa ARGS...`` (each argument ``str()``-ed); with ``check``, assert that exit status.

    ``text=False`` gives bytes (for tests comparing exact output with dash or coreutils);
    ``env`` adds to :func:`nuwa_env`; ``cwd`` is where relative paths are read from.
    """
    r = subprocess.run([sys.executable, "-m", "nuwa", *map(str, args)], capture_output=True, text=text,
                       env=nuwa_env(env), cwd=cwd, timeout=timeout)
    if check is not None and r.returncode != check:
        err = r.stderr if text else r.stderr.decode("utf-8", "replace")
        raise AssertionError(f"nuwa {' '.join(map(str, args))}: exit {r.returncode}, wanted {check}: {err}")
    return r
