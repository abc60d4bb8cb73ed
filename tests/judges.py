"""The real tools as judges: qemu-img, e2fsck, debugfs, dash, dpkg.

A judge that is missing skips the test *visibly* (pytest -ra lists the reason). Under CI
(``CI`` set in the environment) a missing judge is a failure, because ``.ci/run`` installs them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

_SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"


def tool(name: str) -> str:
    """Path of a judge tool, or skip (fail under CI) naming it."""
    path = shutil.which(name) or shutil.which(name, path=_SBIN)
    if path is None:
        msg = f"judge tool {name!r} is not installed"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI must install it in .ci/run)")
        pytest.skip(msg)
    return path


def run(args: list[str], check: bool = True, **kw) -> subprocess.CompletedProcess:
    """Run a judge with text output captured."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    return subprocess.run(args, check=check, **kw)


def qemu_img_check(path: str, force_share: bool = False) -> dict:
    """Assert ``qemu-img check`` reports no errors and no leaks; return its JSON.

    ``force_share`` (``-U``) checks an image that a Nuwa writer still holds open: Nuwa takes
    QEMU's write locks (nuwa/formats/locking.py), so a plain check is refused then.
    """
    r = run([tool("qemu-img"), "check", *(["-U"] if force_share else []), "--output=json", path], check=False)
    assert r.returncode == 0, f"qemu-img check {path} exit {r.returncode}:\n{r.stdout}\n{r.stderr}"
    out = json.loads(r.stdout)
    assert out.get("corruptions", 0) == 0 and out.get("leaks", 0) == 0, out
    return out


def qemu_img_compare(a: str, b: str, force_share: bool = False) -> None:
    """Assert two images have identical guest content (qemu-img compare -s? no: content only);
    ``force_share`` as for :func:`qemu_img_check`."""
    r = run([tool("qemu-img"), "compare", *(["-U"] if force_share else []), a, b], check=False)
    assert r.returncode == 0, f"qemu-img compare {a} {b}: exit {r.returncode}\n{r.stdout}{r.stderr}"


def qemu_img_to_raw(src: str, dst: str) -> None:
    """The reference guest bytes of any image qemu understands."""
    run([tool("qemu-img"), "convert", "-O", "raw", src, dst])


def e2fsck_clean(path: str) -> str:
    """Assert ``e2fsck -fn`` exits 0 with no prompt; return its output.

    FORMAT-NOTES B2.13: the exit code alone hides some problems, so the output must not
    contain any line ending in a "? no" answer, and no journal-recovery warning.
    """
    r = run([tool("e2fsck"), "-fn", path], check=False)
    out = r.stdout + r.stderr
    assert r.returncode == 0, f"e2fsck -fn {path} exit {r.returncode}:\n{out}"
    bad = [ln for ln in out.splitlines() if ln.rstrip().endswith("? no") or "skipping journal recovery" in ln]
    assert not bad, f"e2fsck -fn {path} prompted:\n{out}"
    return out


def debugfs(path: str, *requests: str) -> str:
    """Run read-only debugfs requests; return stdout."""
    args = [tool("debugfs")]
    for req in requests:
        args += ["-R", req] if len(requests) == 1 else []
    if len(requests) != 1:
        r = run([tool("debugfs"), "-f", "-", path], input="\n".join(requests) + "\n", check=False)
    else:
        r = run(args + [path], check=False)
    return r.stdout
