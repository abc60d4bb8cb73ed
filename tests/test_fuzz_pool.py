"""tools/fuzz_pool.py: persistent workers keep the fuzzer's limits (a hang is killed and
replaced, a dying worker is reported, a worker is recycled) without losing or mixing inputs."""

from __future__ import annotations

import os
import time

import pytest

from helpers.paths import tool_module


@pytest.fixture(scope="module")
def pool_mod():
    return tool_module("fuzz_pool")


def _job(job):
    """The workers' target: what each job asks for."""
    if job["do"] == "sleep":
        time.sleep(30)
    if job["do"] == "die":
        os._exit(3)
    if job["do"] == "raise":
        raise ValueError("boom")
    return [{"exit": 0, "n": job["n"], "pid": os.getpid()}]


def _run(pool_mod, tmp_path, jobs, n_workers=2, recycle=500, timeout=2.0):
    pool = pool_mod.Pool(str(tmp_path), n_workers, 1024, _job, recycle=recycle)
    todo, done = list(jobs), []
    pool.run(lambda w: todo.pop(0) if todo else None, lambda w, job, outs: done.append((job, outs)), timeout)
    return done


def test_every_input_answered_once_in_two_workers(pool_mod, tmp_path):
    done = _run(pool_mod, tmp_path, [{"do": "ok", "n": i} for i in range(200)], recycle=7)
    assert sorted(j["n"] for j, _ in done) == list(range(200))
    assert all(outs[0]["n"] == j["n"] for j, outs in done)
    assert len({outs[0]["pid"] for _, outs in done}) >= 200 // 7  # recycled (a stopped worker must end)


def test_a_hang_is_killed_and_the_rest_go_on(pool_mod, tmp_path):
    t0 = time.monotonic()
    done = _run(pool_mod, tmp_path, [{"do": "sleep", "n": 0}] + [{"do": "ok", "n": i} for i in range(1, 20)])
    assert time.monotonic() - t0 < 15
    outs = {j["n"]: o for j, o in done}
    assert outs[0][0]["exc"] == "Hang" and len(outs) == 20
    assert all(outs[i][0]["exit"] == 0 for i in range(1, 20))


def test_a_dying_or_raising_worker_is_reported_and_replaced(pool_mod, tmp_path):
    done = _run(pool_mod, tmp_path, [{"do": "die", "n": 0}, {"do": "raise", "n": 1}]
                + [{"do": "ok", "n": i} for i in range(2, 10)], n_workers=1)
    outs = {j["n"]: o for j, o in done}
    assert outs[0][0]["exc"] == "ChildDied"
    assert outs[1][0]["exc"] == "ValueError"
    assert all(outs[i][0]["exit"] == 0 for i in range(2, 10))
    pids = {outs[i][0]["pid"] for i in range(2, 10)}
    assert len(pids) == 1  # after the raise, a fresh worker took over for the rest
