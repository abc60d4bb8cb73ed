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


def run_timed(argv: list[str], env: dict | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in KiB) of one process (``wait4``); a failure stops the benchmark
    with the end of its stderr."""
    t = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(p.pid, 0)
    took = time.perf_counter() - t
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:5])}... failed: {err.strip()[-400:]}")
    return took, usage.ru_maxrss


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def serve(root: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on an ephemeral 127.0.0.1 port from a daemon thread: (server, base URL)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
