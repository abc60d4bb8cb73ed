"""Shells the interpreter is done with are freed by reference counting, not left to the
cyclic garbage collector (which then ran ten times per mkinitramfs)."""

from __future__ import annotations


def test_finished_subshells_are_freed_without_the_cyclic_collector():
    """A subshell (``$( )``, a pipeline stage) and a model's child run break their one cycle
    (shell <-> expander) when done: with the collector off, none is left behind."""
    import gc

    from nuwa.fs.memory import MemoryFS
    from nuwa.fs.overlay import Overlay
    from nuwa.script.commands import default_models
    from nuwa.script.interp import Shell, run_script

    fs = Overlay(MemoryFS())
    fs.makedirs("/usr/bin")
    for name in ("cat", "env"):
        fs.write_bytes("/usr/bin/" + name, b"\x7fELF", 0o755)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        before = sum(1 for o in gc.get_objects() if isinstance(o, Shell))
        res = run_script(fs, 'for i in 1 2 3; do x=$(echo "$i"); echo "$x" | cat; env cat </dev/null; done\n',
                         env={"PATH": "/usr/bin"}, models=default_models())
        after = sum(1 for o in gc.get_objects() if isinstance(o, Shell))
    finally:
        if was:
            gc.enable()
    assert res.stdout == b"1\n2\n3\n" and res.status == 0
    assert after == before
