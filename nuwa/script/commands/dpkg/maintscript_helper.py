"""``dpkg-maintscript-helper`` (dpkg 1.21.22): run the image's own helper script in the simulator.

The real program is a POSIX shell script (``src/dpkg-maintscript-helper.sh``) whose effects
are made by ``dpkg --compare-versions``, ``dpkg-query``, ``md5sum``, ``sed``, ``mv``, ``rm``,
``rmdir``, ``find``, ``ln``, ``readlink``... all of which have command models. So instead of
a second implementation of its rules (``rm_conffile``, ``mv_conffile``, ``symlink_to_dir``,
``dir_to_symlink``, ``supports`` in every maintainer-script phase), the model interprets the
script the image itself carries, with the caller's arguments, environment, working directory
and umask: whatever that version of dpkg does, the simulation does, message for message.

If anything inside it has to be deferred, the whole helper invocation is deferred; on an
overlay its partial effects are rolled back first (a helper is never half applied).
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation
from nuwa.script.interp import run_script

HELPER = "/usr/bin/dpkg-maintscript-helper"


def _script_path(inv: Invocation) -> str:
    p = inv.argv[0] if inv.argv and "/" in inv.argv[0] else HELPER
    return inv.path(p)


def dpkg_maintscript_helper(inv: Invocation) -> int:
    """The ``dpkg-maintscript-helper`` model (the image's script, interpreted)."""
    path = _script_path(inv)
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except OSError as e:
        raise Defer(f"dpkg-maintscript-helper: cannot read {path}: {e.strerror}") from None
    if not text.startswith("#!/bin/sh"):
        raise Defer(f"dpkg-maintscript-helper: {path} is not the POSIX shell script dpkg ships")
    fs = inv.fs
    sp = fs.savepoint() if hasattr(fs, "savepoint") else None
    res = run_script(fs, text, argv=inv.argv[1:], env=dict(inv.env), name=inv.argv[0] if inv.argv else HELPER,
                     stdin=inv.stdin, umask=inv.umask, cwd=inv.cwd, model_state=inv.state,
                     models=inv.models, is_path=False)
    if res.deferred_whole or res.deferred_commands:
        if sp is not None:
            fs.rollback_to(sp)
        why = res.reason or "; ".join(f"{' '.join(d.argv[:3])}: {d.reason}" for d in res.deferred_commands[:3])
        raise Defer(f"dpkg-maintscript-helper {' '.join(inv.argv[1:2])}: {why}")
    if sp is not None:
        fs.release(sp)
    inv.stdout += res.stdout
    inv.stderr += res.stderr
    return res.status
