"""Running a fleet's tasks on Dask (``dask.distributed``), and the fleet's progress bar.

:func:`run_tasks` maps one function over the tasks, one Dask task per image:

- ``scheduler=None``: an embedded ``LocalCluster`` of ``workers`` worker *processes* (default:
  the core count; never more than there are tasks), one thread each -- the simulator is pure Python, so threads would share one
  interpreter lock; processes also bound the damage of a crash to one worker. Each worker's
  memory is bounded by Dask's ``memory_limit`` (the machine's memory shared out), past which
  the nanny restarts it. It starts on a thread (:class:`Embedded`), its workers forked from a forkserver that imported Dask and the task's
  module once (:func:`_start_method`), while this process runs the leaders itself.
- ``scheduler="tcp://host:port"``: a running Dask cluster; its workers must see the image
  paths (and the download cache) on shared storage and import this ``nuwa``.
- ``workers=0``: no Dask, the tasks run one after the other in this process (for a library
  caller that wants no processes, and to measure Dask's own cost); so do, without
  ``scheduler``, a single task, and a leader whose followers are all ``quick`` (copies of its
  output: milliseconds each, less than starting one worker).

``follow=(follow_fn, strip_fn, leaders)`` chains tasks (effect reuse): ``leaders`` maps a
follower's index to its leader's; a leader runs as ``fn(task)`` and its result travels to each
follower's ``follow_fn(task, leader_result)``; the client collects only
``strip_fn(leader_result)`` (a leader's result may be large). The followers are submitted when
their leader is done, after its result was copied to every worker (so they spread over all of
them). A follower whose leader was lost runs as ``fn(task)`` on its own. With the embedded
cluster, the leaders run in this process while the workers start (the first in any case; its
followers would wait for it anyway), each followed by its ``quick`` followers, and their results
are scattered to every worker; the rest run on workers (:func:`_while_starting`).

A worker that dies (killed, out of memory) loses only the tasks it held: the scheduler sends
them to another worker (Dask's ``allowed-failures``, default 3 deaths per task; past that the
image is reported failed with that reason). Results come back in completion order to
``on_result`` (the progress bar), and are returned in task order.

Dask is imported here, inside :func:`run_tasks` only: ``import nuwa`` and ``nuwa --help`` never
load it.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import shutil
import sys
import threading
import uuid
import warnings

from nuwa.apt.progress import is_terminal
from nuwa.errors import InvalidInputError
from nuwa.host import usable_cpus


def default_workers() -> int:
    """The core count this process may use (the embedded cluster's default size)."""
    return usable_cpus()


def check_workers(workers: int | None) -> None:
    """Refuse a negative ``--workers`` (exit 2)."""
    if workers is not None and workers < 0:
        raise InvalidInputError(f"--workers must be 0 or more, not {workers}")


def run_tasks(fn, tasks: list, workers: int | None = None, scheduler: str | None = None, on_result=None,
              on_lost=None, quiet_logs: bool = True, follow=None, quick=frozenset(), copies=None,
              preload=()) -> list:
    """``[fn(t) for t in tasks]`` on Dask (see the module note); ``on_result(result)`` is called
    as each finishes; ``on_lost(task, reason)`` makes the result of a task Dask gave up on
    (every worker that ran it died); ``follow`` chains followers to leaders (module note);
    ``quick``: positions of followers that take milliseconds when their leader's result
    ``copies(result)`` holds what they copy (its output): without ``scheduler``, a leader whose
    followers are all quick runs with them in this process -- unless its result has nothing to
    copy, then they are jobs of their own, for the cluster -- and this process takes quick
    followers on itself while the embedded cluster starts; ``preload``: modules the embedded
    cluster's workers start with, besides ``fn``'s (what a task imports late, e.g. the package
    engine, imported once for all of them)."""
    check_workers(workers)
    follow_fn, strip_fn, leaders = follow if follow else (None, None, {})
    args = (fn, tasks, workers, scheduler, on_result, on_lost, quiet_logs, follow_fn, strip_fn, leaders, preload)
    # at most one task that is not quick, and no cluster named: this process runs them all
    # (worker processes, each starting Python, Dask and Nuwa, would cost more than the work:
    # one image; a patched base alone; a leader and copies of its output)
    heavy = len(tasks) - len(set(quick) & set(leaders))
    if scheduler is None and (workers == 0 or heavy <= 1):
        done: dict = {}
        if workers != 0 and quick and copies is not None:
            lead = leaders[min(quick)]  # the one task that is not quick
            done[lead] = fn(tasks[lead])
            if not copies(done[lead]):  # nothing to copy: its followers are jobs of their own
                return _on_cluster(*args, frozenset(), copies, done)
        return _run_here(fn, tasks, on_result, follow_fn, strip_fn, leaders, done)
    return _on_cluster(*args, quick if copies is not None else frozenset(), copies, {})


def _on_cluster(fn, tasks, workers, scheduler, on_result, on_lost, quiet_logs, follow_fn, strip_fn, leaders, preload,
                quick, copies, here) -> list:
    """:func:`run_tasks` on a cluster (``scheduler``'s, else the embedded one, closed at the
    end); ``here``: results of tasks this process ran already."""
    embedded = None
    try:
        if scheduler is None:
            embedded = Embedded(min(workers or default_workers(), len(tasks) - 1), quiet_logs,
                                preload=(fn.__module__, *preload))
            here = _while_starting(fn, tasks, embedded, on_result, follow_fn, leaders, quick, copies, here)
        return _on_dask(fn, tasks, scheduler, embedded, on_result, on_lost, quiet_logs, follow_fn, strip_fn,
                        leaders, here)
    finally:
        if embedded is not None:
            embedded.close()


def _while_starting(fn, tasks, embedded, on_result, follow_fn, leaders, quick, copies, here) -> dict:
    """What this process runs while the embedded cluster starts: the leaders, in order (their
    followers wait for them anyway, and the workers' start-up is the one cost a fleet cannot
    share), each followed by its quick followers when it left them something to copy -- the
    first leader in any case (unless one ran already: ``here``), every other only if the
    cluster is not up yet. Returns ``{position: result}`` of what ran here."""
    here = dict(here)
    for lead in sorted(set(leaders.values())):
        if lead not in here:
            if here and embedded.ready():
                break
            here[lead] = fn(tasks[lead])
        if not quick or not copies(here[lead]):
            continue  # (no copies: its followers are jobs, for the workers)
        for j in sorted(j for j, ld in leaders.items() if ld == lead and j in quick):
            if embedded.ready():
                break
            here[j] = follow_fn(tasks[j], here[lead])
            if on_result is not None:
                on_result(here[j])
    return here


def _on_dask(fn, tasks, scheduler, embedded, on_result, on_lost, quiet_logs, follow_fn, strip_fn, leaders,
             here) -> list:
    """:func:`run_tasks` on a cluster: ``scheduler``'s, else ``embedded``'s; ``here`` holds the
    results of the tasks this process ran already (:func:`_while_starting`)."""
    # late: Dask loads only when a fleet runs on it (start-up speed of ``import nuwa``, ``nuwa --help``)
    from distributed import Client, as_completed  # (late, see above)
    from distributed.client import FutureCancelledError  # (late, see above)

    _quiet_dask(quiet_logs)
    cluster = None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="20s")
        except OSError as e:
            raise InvalidInputError(f"cannot reach the Dask scheduler ({e})", where=scheduler) from None
    else:
        cluster = embedded.result()
        client = Client(cluster)
    with client:
        if cluster is not None:  # each new worker imports fn's module now, not when its first task
            # arrives (a follower's worker would otherwise wait for its leader, then import)
            warm = [client.submit(importlib.import_module, fn.__module__, workers=[addr], pure=False,
                                  key=f"nuwa-import-{i}-{uuid.uuid4().hex[:12]}", priority=10)
                    for i, addr in enumerate(client.scheduler_info()["workers"])]
        run = uuid.uuid4().hex[:12]  # keys unique per run: a shared scheduler may hold an older run's
        # a leader's own job is its image's task ("nuwa-image-"); the client waits on a small
        # task that drops the effect from its outcome ("nuwa-strip-")
        heads = {i: client.submit(fn, tasks[i], key=f"nuwa-image-{i}-{run}", pure=False)
                 for i in sorted(set(leaders.values())) if i not in here}
        followers: dict[int, list[int]] = {}
        for i in sorted(leaders):
            followers.setdefault(leaders[i], []).append(i)
        futures, index = [], {}
        for i, t in enumerate(tasks):
            if i in here:
                continue  # ran in this process (above); a leader's followers are released below
            if i in heads:
                f = client.submit(strip_fn, heads[i], key=f"nuwa-strip-{i}-{run}", pure=False)
            elif i in leaders:
                continue  # submitted when its leader is done (below)
            else:
                f = client.submit(fn, t, key=f"nuwa-image-{i}-{run}", pure=False)
            futures.append(f)
            index[f.key] = i
        out: list = [None] * len(tasks)
        leading = set(leaders.values())
        for j, result in here.items():
            if j not in leading:
                out[j] = result
        pending = as_completed(futures)

        def release(lead: int, done: bool) -> None:
            """The followers of ``lead``, now that it is done (or lost: then each alone). Its
            result is first copied to every worker: Dask places a task beside its input, and
            would otherwise run every follower on the leader's worker, one after the other."""
            if done and lead not in here:
                client.replicate([heads[lead]])
            for j in followers.get(lead, ()):
                if j in here:
                    continue  # ran in this process while the cluster started
                f = (client.submit(follow_fn, tasks[j], heads[lead], key=f"nuwa-image-{j}-{run}", pure=False)
                     if done else client.submit(fn, tasks[j], key=f"nuwa-alone-{j}-{run}", pure=False))
                index[f.key] = j
                pending.add(f)

        for lead in sorted(leading & set(here)):  # leaders run here: to every worker, their followers out
            heads[lead] = client.scatter(here[lead], broadcast=True, hash=False)
            out[lead] = here[lead] = strip_fn(here[lead])  # (the effect is the workers' now)
            release(lead, True)
            if on_result is not None:
                on_result(out[lead])
        for fut in pending:
            i = index[fut.key]
            try:
                out[i] = fut.result()
            except (FutureCancelledError, Exception) as e:  # KilledWorker: every worker that ran it died
                if i in leaders and fut.key.startswith("nuwa-image-"):  # its leader was lost: run alone
                    again = client.submit(fn, tasks[i], key=f"nuwa-alone-{i}-{run}", pure=False)
                    index[again.key] = i
                    pending.add(again)
                    fut.release()
                    continue
                if on_lost is None:
                    raise
                out[i] = on_lost(tasks[i], f"{type(e).__name__}: {e}")
                if fut.key.startswith("nuwa-strip-"):
                    release(i, False)
            else:
                if fut.key.startswith("nuwa-strip-"):
                    release(i, True)
            if on_result is not None:
                on_result(out[i])
            fut.release()
        for f in list(heads.values()) + (warm if cluster is not None else []):
            f.release()
        return out


def _quiet_dask(quiet_logs: bool) -> None:
    if quiet_logs:  # Dask's own chatter (a worker restarting...) is not the fleet's output
        for name in ("distributed", "tornado"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        # its scheduler's HTTP server takes another port when a second cluster holds 8787
        warnings.filterwarnings("ignore", message="Port .* is already in use", category=UserWarning)


class Embedded:
    """The embedded ``LocalCluster`` of ``size`` worker processes, started on a thread from the
    moment a fleet knows it will want one (its workers' start-up -- a Python each, Dask, Nuwa's
    imports -- goes on while the client runs the leaders); :meth:`result` waits
    for it, :meth:`close` stops it (also when it was never used)."""

    def __init__(self, size: int, quiet_logs: bool = True, preload: tuple = ()):
        self.size = max(1, size)
        self.quiet_logs = quiet_logs
        self.preload = tuple(preload)
        self._cluster = self._error = None
        _quiet_dask(quiet_logs)
        self._thread = threading.Thread(target=self._start, name="nuwa-cluster-start", daemon=True)
        self._thread.start()

    def _start(self) -> None:
        try:
            import dask  # (late: see run_tasks)
            from distributed import LocalCluster  # (late: see run_tasks)

            with dask.config.set({"distributed.worker.multiprocessing-method": _start_method(self.preload)}):
                self._cluster = LocalCluster(n_workers=self.size, threads_per_worker=1, processes=True,
                                             dashboard_address=None,
                                             silence_logs=logging.CRITICAL if self.quiet_logs else logging.WARNING)
        except BaseException as e:  # handed to the caller by result()
            self._error = e

    def ready(self) -> bool:
        """Whether starting is over (the cluster is up, or failed to start)."""
        return not self._thread.is_alive()

    def result(self):
        """The cluster, once started (raises what starting it raised)."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._cluster

    def close(self) -> None:
        """Stop the cluster (waiting for it to have started first); idempotent."""
        self._thread.join()
        cluster, self._cluster = self._cluster, None
        if cluster is not None:
            cluster.close()


def _start_method(preload: tuple) -> str:
    """How the embedded cluster's worker processes start: ``forkserver`` where there is one --
    a server process imports Dask and ``preload`` (the task's module: the package engine) once,
    and each worker is a fork of it, started with all that loaded (and stopped as fast) --
    else ``spawn``, Dask's default (a fresh Python each, importing everything again). Dask's
    own forkserver preload would import every optional package it knows of into this process
    first; the preload is set here instead, and Dask told it is set. A worker the nanny
    restarts later (after dying) is spawned, Dask's default."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return "spawn"
    import distributed.utils  # (late: see run_tasks)

    if not getattr(distributed.utils, "_forkserver_preload_set", True):
        multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", *preload])
        distributed.utils._forkserver_preload_set = True
    return "forkserver"


def _run_here(fn, tasks, on_result, follow_fn, strip_fn, leaders, done) -> list:
    """Every task in this process (``workers=0``, one task, or a leader and its copies: see
    :func:`run_tasks`), leaders first (their effects kept until their followers ran, then
    dropped); ``done``: results of leaders run already."""
    out: list = [None] * len(tasks)
    heads, leading = {}, set(leaders.values())
    order = sorted(range(len(tasks)), key=lambda i: (i in leaders, i))
    for i in order:
        if i in leaders:
            out[i] = follow_fn(tasks[i], heads[leaders[i]])
        else:
            out[i] = done[i] if i in done else fn(tasks[i])
            if i in leading:
                heads[i] = out[i]
                out[i] = strip_fn(out[i])
        if on_result is not None:
            on_result(out[i])
    return out


class FleetProgress:
    """One redrawn line on a terminal's stderr: a bar for the fleet and the counts by outcome::

        fleet [##########----------] 25/50  patched 20  up-to-date 3  failed 2

    Disabled (silent) unless ``stream`` is a terminal (and not stdout, which carries the report);
    the caller disables it for ``--quiet`` and ``--json`` (DESIGN.md "The command line").
    """

    def __init__(self, total: int, outcomes, stream=None, enabled: bool = True):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.done = 0
        self.counts = {o: 0 for o in outcomes}
        self.enabled = enabled and total > 0 and is_terminal(self.stream)

    def update(self, outcome: str) -> None:
        """One more image finished with ``outcome``; redraw."""
        self.done += 1
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        if self.enabled:
            self.stream.write("\r" + self.line() + "\x1b[K")
            self.stream.flush()

    def line(self) -> str:
        """The status line (without the carriage return)."""
        width = max(10, min(30, shutil.get_terminal_size((80, 20)).columns - 60))
        filled = width * self.done // max(1, self.total)
        counts = "  ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        return f"fleet [{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total}  {counts}".rstrip()

    def close(self) -> None:
        """End the line (the report follows on stdout)."""
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
