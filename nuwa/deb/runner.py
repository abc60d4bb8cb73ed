"""Maintainer-script runners: the interface dpkg's operations call, and a recording runner.

dpkg runs each maintainer script with the arguments of Debian Policy chapter 6 and this
environment (``src/main/script.c``: ``maintscript_set_exec_context``, ``maintscript_exec``):
``DPKG_MAINTSCRIPT_PACKAGE`` (the package name without arch), ``DPKG_MAINTSCRIPT_ARCH``,
``DPKG_MAINTSCRIPT_NAME`` (preinst, postinst, ...), ``DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT``,
``DPKG_MAINTSCRIPT_DEBUG``, ``DPKG_RUNNING_VERSION``, and ``DPKG_ROOT`` (empty: the image is
the root) and ``DPKG_ADMINDIR``. A missing script is not run at all (status 0).

The script simulator plugs in as a :class:`ScriptRunner`; :class:`RecordingRunner` only
records the calls (every test of this package's operations uses it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

#: dpkg in Debian 12
DPKG_RUNNING_VERSION = "1.21.22"


@dataclass
class ScriptCall:
    """One maintainer-script invocation as dpkg would make it."""

    package: str
    script_name: str
    args: list[str]
    env: dict[str, str]
    status: int = 0

    def argv(self) -> list[str]:
        return [self.script_name, *self.args]

    def __str__(self) -> str:
        return f"{self.package} {self.script_name} {' '.join(self.args)}".rstrip()


class ScriptRunner(Protocol):
    """What runs (or simulates) one maintainer script; returns its exit status.

    ``script`` is the script's bytes, ``fs`` the image's filesystem model (an overlay while
    dpkg works), ``path`` where the script lives in the image (``info/`` or dpkg's temporary
    control directory, which Nuwa never materialises: read ``script`` instead).
    """

    def run(self, package: str, script_name: str, args: list[str], env: dict[str, str], *,
            script: bytes = b"", fs=None, path: str = "") -> int:
        ...


@dataclass
class RecordingRunner:
    """Records every call and answers with a fixed status (or one per ``(package, script, arg0)``)."""

    calls: list[ScriptCall] = field(default_factory=list)
    default_status: int = 0
    fail: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def run(self, package: str, script_name: str, args: list[str], env: dict[str, str], *,
            script: bytes = b"", fs=None, path: str = "") -> int:
        status = self.fail.get((package, script_name, args[0] if args else ""), self.default_status)
        self.calls.append(ScriptCall(package, script_name, list(args), dict(env), status))
        return status

    def lines(self) -> list[str]:
        """The calls as ``package script args`` strings."""
        return [str(c) for c in self.calls]


def script_env(package: str, arch: str, script_name: str, admindir: str = "/var/lib/dpkg",
               refcount: int = 1) -> dict[str, str]:
    """The environment dpkg sets for a maintainer script."""
    return {
        "DPKG_MAINTSCRIPT_PACKAGE": package,
        "DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT": str(refcount),
        "DPKG_MAINTSCRIPT_ARCH": arch,
        "DPKG_MAINTSCRIPT_NAME": script_name,
        "DPKG_MAINTSCRIPT_DEBUG": "0",
        "DPKG_RUNNING_VERSION": DPKG_RUNNING_VERSION,
        "DPKG_ROOT": "",
        "DPKG_ADMINDIR": admindir,
    }
