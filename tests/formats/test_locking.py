"""Image locks as QEMU takes them (nuwa/formats/locking.py), judged by real QEMU programs.

Each test starts the QEMU program itself (``qemu-io`` reading commands from a pipe, or
``qemu-system-x86_64 -accel tcg -S`` stopped before the first instruction), waits until its
locks are visible in ``/proc/locks``, and ends it by its PID.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import time

import pytest

from helpers.cli import nuwa
from helpers.paths import TESTIMAGES
from judges import tool
from nuwa.errors import EXIT_FAILED, OperationFailedError
from nuwa.formats import locking
from nuwa.formats.detect import open_disk
from nuwa.formats.qcow2_create import create_overlay, create_qcow2

pytestmark = pytest.mark.judge
MiB = 1 << 20
DEFAULT_IMAGE = os.path.join(TESTIMAGES, "default.qcow2")


def digest(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def ofd_bytes(path) -> set[int]:
    """The bytes of ``path`` that hold OFD locks (any holder), from /proc/locks."""
    st = os.stat(path)
    out = set()
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if len(parts) < 8 or parts[1] != "OFDLCK":
                continue
            dev, ino = parts[5].rsplit(":", 1)[0], int(parts[5].rsplit(":", 1)[1])
            major, minor = (int(x, 16) for x in dev.split(":"))
            if ino == st.st_ino and os.makedev(major, minor) == st.st_dev:
                out.update(range(int(parts[6]), int(parts[7]) + 1))
    return out


class Holder:
    """A QEMU program holding an image open; stopped by its PID."""

    def __init__(self, args: list[str], path: str, want: set[int], also: tuple = ()):
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while not (want <= ofd_bytes(path) and all(w <= ofd_bytes(p) for p, w in also)):
            if self.proc.poll() is not None:
                raise AssertionError(f"{args[0]} exited: {self.proc.stderr.read().decode()}")
            assert time.monotonic() < deadline, f"{args[0]} did not lock {path}"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stderr.close()


WRITE_BYTES = {100, 101, 103, 201, 203}
SHARED_BYTES = {100, 201, 203}


@pytest.fixture()
def chain(tmp_path):
    base = str(tmp_path / "base.qcow2")
    top = str(tmp_path / "top.qcow2")
    create_qcow2(base, 8 * MiB)
    create_overlay(top, base)
    return base, top


def qemu_io(path: str, want: set[int], also: tuple = ()) -> Holder:
    return Holder([tool("qemu-io"), "-f", "qcow2", path], path, want, also)


def test_lock_bytes_are_qemus():
    # what QEMU 7.2 holds (observed in /proc/locks: a writable qcow2 and its backing file)
    assert set(locking.lock_bytes(*locking.WRITE)) == WRITE_BYTES
    assert set(locking.lock_bytes(*locking.SHARED)) == SHARED_BYTES


def test_nuwa_takes_the_locks_qemu_takes(chain):
    base, top = chain
    with open_disk(top, writable=True):
        assert ofd_bytes(top) == WRITE_BYTES
        assert ofd_bytes(base) == SHARED_BYTES
    assert ofd_bytes(top) == set() and ofd_bytes(base) == set()
    with open_disk(top):  # read-only: no locks (like qemu-img -U)
        assert ofd_bytes(top) == set() and ofd_bytes(base) == set()


def test_refuses_an_image_qemu_io_writes(chain):
    base, top = chain
    before = digest(top), digest(base)
    holder = qemu_io(top, WRITE_BYTES, also=[(base, SHARED_BYTES)])
    try:
        with pytest.raises(OperationFailedError, match='"write" lock.*in use'):
            open_disk(top, writable=True)
        # the backing file of a running image is not writable either
        with pytest.raises(OperationFailedError, match='lock.*in use'):
            open_disk(base, writable=True)
        r = nuwa("copy-in", top, "/etc/hostname", "/", "--in-place")
        assert r.returncode == EXIT_FAILED, r
        assert len(r.stderr.strip().splitlines()) == 1 and "in use" in r.stderr and "Traceback" not in r.stderr
        with open_disk(top) as dev:  # reading still works
            assert dev.pread(0, 512) == bytes(512)
    finally:
        holder.stop()
    assert (digest(top), digest(base)) == before
    with open_disk(top, writable=True):  # released with the process
        pass


def test_refuses_an_output_overlay_over_an_image_being_written(tmp_path):
    # a real root filesystem, so the run gets as far as creating its overlay
    top = str(tmp_path / "top.qcow2")
    shutil.copyfile(DEFAULT_IMAGE, tmp_path / "default.qcow2")
    create_overlay(top, str(tmp_path / "default.qcow2"))
    holder = qemu_io(top, WRITE_BYTES)
    try:
        out = tmp_path / "out.qcow2"
        r = nuwa("copy-in", top, "/etc/hostname", "/", "--output", out)
        assert r.returncode == EXIT_FAILED and "in use" in r.stderr, r
        assert not out.exists() and not [p for p in os.listdir(tmp_path) if p.startswith(".out")]
    finally:
        holder.stop()


def test_qemu_refuses_while_nuwa_writes(chain):
    base, top = chain
    with open_disk(top, writable=True):
        r = subprocess.run([tool("qemu-io"), "-f", "qcow2", "-c", "read 0 512", top], capture_output=True, text=True)
        assert r.returncode != 0 and 'Failed to get "write" lock' in r.stderr, r
        r = subprocess.run([tool("qemu-io"), "-f", "qcow2", "-c", "write 0 512", base], capture_output=True, text=True)
        assert r.returncode != 0 and "lock" in r.stderr, r
        # a VM: qemu-system refuses to start on the image (-S: it would stop before the first
        # instruction; the test ends it by its PID if it starts anyway)
        args = [tool("qemu-system-x86_64"), "-accel", "tcg", "-S", "-display", "none", "-nodefaults",
                "-m", "64", "-drive", f"file={top},format=qcow2,if=virtio"]
        vm = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        try:
            _out, err = vm.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(vm.pid, signal.SIGKILL)
            vm.wait()
            raise AssertionError("qemu-system-x86_64 started on an image Nuwa is writing")
        assert vm.returncode != 0 and 'Failed to get "write" lock' in err, err
    r = subprocess.run([tool("qemu-io"), "-f", "qcow2", "-c", "read 0 512", top], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_nuwa_refuses_a_running_vm(chain):
    base, top = chain
    args = [tool("qemu-system-x86_64"), "-accel", "tcg", "-S", "-display", "none", "-nodefaults", "-m", "64",
            "-monitor", "stdio", "-drive", f"file={top},format=qcow2,if=virtio"]
    before = digest(top)
    vm = Holder(args, top, WRITE_BYTES, also=[(base, SHARED_BYTES)])
    try:
        with pytest.raises(OperationFailedError, match="in use"):
            open_disk(top, writable=True)
        with pytest.raises(OperationFailedError, match="in use"):
            open_disk(base, writable=True)
    finally:
        vm.stop()
    assert digest(top) == before


def test_second_nuwa_writer_refuses_at_once(chain, tmp_path):
    base, top = chain
    raw = str(tmp_path / "disk.raw")
    with open(raw, "wb") as f:
        f.truncate(4 * MiB)
    for path in (top, raw):
        with open_disk(path, writable=True):
            t0 = time.monotonic()
            with pytest.raises(OperationFailedError, match="in use"):
                open_disk(path, writable=True)  # a second open file description: OFD locks conflict
            r = nuwa("copy-in", path, "/etc/hostname", "/", "--in-place")
            assert r.returncode == EXIT_FAILED and "in use" in r.stderr, r
            assert len(r.stderr.strip().splitlines()) == 1
            assert time.monotonic() - t0 < 60  # refuses, does not wait
            with open_disk(path):  # a reader is not refused
                pass
        with open_disk(path, writable=True):  # free again
            pass


def test_writer_refuses_a_backing_file_in_use_by_a_writing_nuwa(chain, tmp_path):
    base, top = chain
    top2 = str(tmp_path / "top2.qcow2")
    create_overlay(top2, base)
    with open_disk(top, writable=True):  # base is held shared (read, no writers)
        with open_disk(top2, writable=True):  # another overlay over the same base: fine, as in QEMU
            pass
        with pytest.raises(OperationFailedError, match="in use"):
            open_disk(base, writable=True)
