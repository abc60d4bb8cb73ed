"""A qemu guest driven through its serial console, every wait bounded.

``qemu-system-x86_64 -accel tcg`` (no KVM: CI runners have none) with a direct kernel boot
(or, with no kernel given, the disk's own boot loader through the BIOS),
no network, the serial console on qemu's stdin/stdout (``-nographic -serial stdio -monitor
none``). A reader thread copies everything the guest prints into a buffer and a host log
file; :meth:`Guest.expect` waits for a pattern with a deadline; :meth:`Guest.close` kills the
qemu process this object started (by its PID) if it is still running.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time

from judges import tool


class Guest:
    """One running VM (use as a context manager: qemu is killed on the way out)."""

    def __init__(self, disk: str, kernel: str, initrd: str, append: str, console_log: str, memory: int = 1024):
        qemu = tool("qemu-system-x86_64")
        self.console_log = console_log
        self.args = [qemu, "-accel", "tcg", "-m", str(memory), "-nographic", "-serial", "stdio", "-monitor", "none",
                     "-nic", "none", "-no-reboot", "-drive", f"file={disk},if=virtio,format=qcow2"]
        if kernel:  # a direct kernel boot; without one the firmware boots the disk's own boot loader
            self.args += ["-kernel", kernel, "-initrd", initrd, "-append", append]
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._log = open(console_log, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 65536)
            with self._cond:
                if not data:
                    self._cond.notify_all()
                    return
                self._buf += data
                self._log.write(data)
                self._log.flush()
                self._cond.notify_all()

    @property
    def output(self) -> str:
        """Everything the guest printed so far (decoded leniently)."""
        with self._cond:
            return self._buf.decode("utf-8", "replace")

    def expect(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        """Wait until ``pattern`` (a regex on the decoded output from ``start``) appears.

        Raises AssertionError naming the pattern and the console's tail on timeout or exit."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                text = self._buf.decode("utf-8", "replace")
                m = rx.search(text, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    why = "timed out" if left <= 0 else f"qemu exited ({self.proc.returncode})"
                    raise AssertionError(f"{why} after waiting for {pattern!r}; console tail:\n{text[-3000:]}")
                self._cond.wait(min(left, 1.0))

    def mark(self) -> int:
        """The current length of the decoded output (an ``expect`` start)."""
        return len(self.output)

    def send(self, text: str) -> None:
        """Type ``text`` on the serial console."""
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout: float) -> int:
        """Wait for qemu to end by itself (the guest powered off); its exit status."""
        return self.proc.wait(timeout=timeout)

    def close(self) -> None:
        """Kill qemu (this object's own process, by PID) if it still runs; close the log."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._reader.join(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        self._log.close()

    def __enter__(self) -> "Guest":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
