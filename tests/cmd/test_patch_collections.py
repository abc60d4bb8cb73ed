"""``nuwa patch`` runs its job with the cyclic collector's thresholds raised
(``fewer_collections``) and gives the process its thresholds back afterwards, also on an error,
and what the job froze out of the collector back to it: a library caller or a test session
running the command in-process keeps its own settings."""

from __future__ import annotations

import gc

import pytest

from nuwa.cmd.patch import THRESHOLDS, fewer_collections


def test_the_thresholds_are_raised_inside_and_restored_after():
    before = gc.get_threshold()
    with fewer_collections():
        inside = gc.get_threshold()
    assert all(i >= max(b, t) for i, b, t in zip(inside, before, THRESHOLDS)) and inside[0] >= 10_000
    assert gc.get_threshold() == before


def test_what_the_job_froze_is_unfrozen_after_and_a_callers_freeze_is_kept():
    gc.unfreeze()  # nothing frozen before the job (an earlier test may have frozen some)
    with fewer_collections():
        gc.freeze()  # as run_patch does once the plan is made
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    try:
        gc.freeze()
        kept = gc.get_freeze_count()
        with fewer_collections():
            [[] for _ in range(10)]
        assert gc.get_freeze_count() == kept
    finally:
        gc.unfreeze()


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
