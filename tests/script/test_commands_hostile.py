"""Hostile invocations of the file-utility models: they only ever touch the image."""

import os

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation
from nuwa.script.interp import run_script

MODELS = default_models()


def _fs():
    fs = MemoryFS()
    fs.makedirs("/etc")
    fs.write_bytes("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    fs.makedirs("/usr/bin")
    fs.write_bytes("/usr/bin/x", b"x")
    fs.symlink("/", "/usr/escape")
    fs.symlink("../../../../..", "/usr/up")
    return fs


def _run(fs, *argv, cwd="/"):
    inv = Invocation(argv=list(argv), fs=fs, cwd=cwd, env={"LC_ALL": "C"}, models=MODELS)
    return MODELS[argv[0]](inv), bytes(inv.stdout), bytes(inv.stderr)


def test_rm_rf_root_refused_then_only_image(tmp_path):
    canary = tmp_path / "canary"
    canary.write_text("x")
    fs = _fs()
    status, _, err = _run(fs, "rm", "-rf", "/")
    assert status == 1 and b"dangerous to operate recursively on '/'" in err
    assert fs.exists("/usr/bin/x")
    status, _, err = _run(fs, "rm", "-rf", "--no-preserve-root", "/")
    # like the kernel: everything below goes, rmdir("/") itself is EBUSY
    assert (status, err) == (1, b"rm: cannot remove '/': Device or resource busy\n")
    assert fs.readdir("/") == []
    assert canary.read_text() == "x" and os.path.exists("/etc/passwd")


def test_rm_through_escaping_links_stays_inside(tmp_path):
    fs = _fs()
    status, _, err = _run(fs, "rm", "-rf", "/usr/up/etc")
    assert status == 0, err
    assert not fs.exists("/etc") and os.path.exists("/etc/passwd")
    status, _, err = _run(fs, "rm", "-r", "/usr/escape/")
    assert fs.exists("/usr/escape") is False or fs.lexists("/usr/escape")
    assert os.path.exists("/etc/passwd")


def test_cp_ln_mv_absolute_targets_are_image_paths(tmp_path):
    fs = _fs()
    assert _run(fs, "cp", "/etc/passwd", "/tmpcopy")[0] == 0
    assert fs.read_bytes("/tmpcopy") == b"root:x:0:0:root:/root:/bin/sh\n"
    assert _run(fs, "ln", "-s", "/etc/shadow", "/usr/sh")[0] == 0
    assert _run(fs, "mv", "/usr/bin/x", "/usr/escape/y")[0] == 0
    assert fs.exists("/y") and not os.path.exists("/y")
    assert _run(fs, "readlink", "-f", "/usr/up/usr/escape/etc")[1] == b"/etc\n"


def test_ldconfig_on_a_truncated_binary_defers():
    # fuzz finding (tools/fuzz.py, script kind): an image ldconfig of only the 4 ELF magic bytes
    # made the model index past the end of the header (IndexError); it now defers, naming the file
    fs = _fs()
    fs.makedirs("/sbin")
    fs.write_bytes("/sbin/ldconfig", b"\x7fELF", 0o755)
    with pytest.raises(Defer, match="is not an ELF binary"):
        _run(fs, "ldconfig")


def test_a_program_reading_a_directory_as_stdin_defers_the_script():
    # fuzz finding (script kind): `foo < /` with `foo` deferred read its stdin to record it and
    # IsADirectoryError leaked. The program would meet that read error itself: the whole script
    # now runs at boot, where it does
    fs = _fs()
    fs.write_bytes("/usr/bin/foo", b"\x7fELF", 0o755)
    fs.write_bytes("/usr/bin/cat", b"\x7fELF", 0o755)
    for text in ("foo < /\n", "cat < /; echo $?\n"):
        r = run_script(fs, text, models=MODELS, is_path=False)
        assert r.deferred_whole and "standard input" in r.reason and "Is a directory" in r.reason, r
