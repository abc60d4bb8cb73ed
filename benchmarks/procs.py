"""What the end-to-end benchmarks share: a process timed with its peak RSS, and a directory
served on 127.0.0.1 (a local mirror of the material's repositories)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
import tempfile
import time

#: compiled bytecode is cached outside the checkout, as an installed package has it (a
#: ``PYTHONDONTWRITEBYTECODE`` environment would otherwise compile every module on each start)
PYCACHE = os.path.join(tempfile.gettempdir(), "nuwa-bench-pycache")


def nuwa_env(repo: str, base: dict | None = None) -> dict:
    """The environment of a timed ``python3 -m nuwa`` from checkout ``repo``: the checkout on
    the path and its bytecode cached (an installed package's start-up, not a first import)."""
    env = {**(os.environ if base is None else base), "PYTHONPATH": repo, "PYTHONPYCACHEPREFIX": PYCACHE}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def hwm(pid: int | str = "self") -> int:
    """``VmHWM`` (the peak RSS of its own memory map) of a live process in KiB (0 once it has
    exited); ``self`` for this process."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def wait_peak(pid: int, every: float = 0.01) -> tuple[int, object, int]:
    """Wait for child ``pid``: (status, rusage, peak RSS in KiB).

    The peak is the process's own ``VmHWM``, read by a thread every ``every`` seconds while
    this one waits (the last reading before it exits stands; the wait itself returns the
    moment the process ends, so the wall time is not lengthened by the polling). Not
    ``wait4``'s ``ru_maxrss``: Linux carries the parent's RSS at ``fork`` into the child's
    maximum, so a 300 MB harness reported 313 MB for ``python3 -c pass`` (13 MB from a small
    parent), and every Nuwa process this harness started seemed at least as large as the
    harness."""
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], hwm(pid))
            done.wait(every)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    _, status, usage = os.wait4(pid, 0)
    done.set()
    t.join()
    return status, usage, peak[0]


def run_measured(argv: list[str], env: dict | None = None, cwd: str | None = None,
                 stdout=subprocess.DEVNULL) -> tuple[float, int, float]:
    """(wall seconds, peak RSS in KiB: :func:`wait_peak`, CPU seconds: user + system) of one
    process; a failure stops the benchmark with the end of its stderr."""
    with tempfile.TemporaryFile() as err:
        t = time.perf_counter()
        p = subprocess.Popen(argv, stdout=stdout, stderr=err, env=env, cwd=cwd)
        status, usage, peak = wait_peak(p.pid)
        took = time.perf_counter() - t
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(argv[:5])}... failed ({code}): "
                             f"{err.read().decode(errors='replace').strip()[-2000:]}")
    return took, peak, usage.ru_utime + usage.ru_stime


def run_timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one process (:func:`run_measured`)."""
    return run_measured(argv, env)[:2]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def serve(root: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on an ephemeral 127.0.0.1 port from a daemon thread: (server, base URL)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
