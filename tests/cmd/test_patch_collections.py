"""``nuwa patch`` runs its job with the cyclic collector's first threshold raised
(``fewer_collections``) and gives the process its thresholds back afterwards, also on an error:
a library caller or a test session running the command in-process keeps its own settings."""

from __future__ import annotations

import gc

import pytest

from nuwa.cmd.patch import fewer_collections


def test_the_thresholds_are_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with fewer_collections():
        inside = gc.get_threshold()
    assert inside[0] >= 10_000 and inside[1:] == before[1:]
    assert gc.get_threshold() == before


def test_restored_after_an_error_and_never_lowered():
    before = gc.get_threshold()
    try:
        gc.set_threshold(50_000, *before[1:])
        with pytest.raises(RuntimeError):
            with fewer_collections():
                assert gc.get_threshold()[0] == 50_000  # a caller's higher threshold is kept
                raise RuntimeError("the job failed")
        assert gc.get_threshold() == (50_000, *before[1:])
    finally:
        gc.set_threshold(*before)


def test_steady_heap_leaves_a_process_without_glibc_alone(monkeypatch):
    """``steady_heap`` sets glibc's malloc thresholds; where there is no glibc (the library
    cannot be loaded, or has no ``mallopt``) it changes nothing and raises nothing."""
    import ctypes

    from nuwa.cmd.patch import steady_heap

    def no_libc(name, *a, **k):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    steady_heap()
    monkeypatch.setattr(ctypes, "CDLL", lambda name, *a, **k: object())  # a libc without mallopt
    steady_heap()
