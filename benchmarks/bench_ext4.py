#!/usr/bin/env python3
"""ext4 engine benchmark: Nuwa against e2fsprogs on a real Debian root, in one run.

    python3 benchmarks/bench_ext4.py [--tree DIR] [--keep]

1. **populate**: copy every path of a bookworm root (mmdebstrap minbase plus packages, built
   once and cached in /var/tmp/nuwa-trees; ~17,000 paths / ~500 MB is the target) into an
   empty ``mkfs.ext4`` image through ``open_ext4(writable=True)``, against
   ``mkfs.ext4 -d`` of the same tree. The Nuwa image must pass ``e2fsck -fn``.
2. **read back**: walk the Nuwa-written image and read every file with Nuwa, against
   ``debugfs -R "rdump / DIR"``.
3. **small files**: create, then delete, 10,000 small files in one hash-indexed directory
   (indexed first by ``e2fsck -fD``), against the same through a debugfs script.

Each Nuwa phase runs in a child process so that its peak RSS (target < 200 MB) is its own.
Prints seconds, ratios (>1: Nuwa slower; target within 3x for populate) and peak RSS.
Needs root (mmdebstrap --mode=root, file ownership).
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))

PACKAGES = ["systemd", "systemd-sysv", "openssh-server", "python3", "perl", "git", "vim", "curl", "locales",
            "man-db", "iproute2", "rsyslog", "cron", "gcc", "make"]
CACHE = "/var/tmp/nuwa-trees"
SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"
CHUNK = 1 << 20


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path=SBIN)
    if not path:
        raise SystemExit(f"bench_ext4: {name} is not installed")
    return path


def debian_mirror() -> str:
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from debian_tree import debian_mirror as m

    return m()


def build_tree() -> str:
    """The cached bookworm tree (minbase + PACKAGES), built with mmdebstrap if missing."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"bench-ext4-bookworm-{datetime.date.today().isoformat()}")
    with open(os.path.join(CACHE, ".bench-ext4.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(path, "etc/os-release")):
            tmp = path + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            subprocess.run([tool("mmdebstrap"), "--mode=root", "--variant=minbase", "--include=" + ",".join(PACKAGES),
                            "bookworm", tmp, f"deb {debian_mirror()} bookworm main"], check=True,
                           stdout=subprocess.DEVNULL)
            os.rename(tmp, path)
    return path


def tree_size(root: str) -> tuple[int, int]:
    """(paths, bytes of regular-file content) of a host tree."""
    paths = size = 0
    for dp, dns, fns in os.walk(root):
        for n in dns + fns:
            paths += 1
            st = os.lstat(os.path.join(dp, n))
            if stat.S_ISREG(st.st_mode):
                size += st.st_size
    return paths, size


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def mkfs_empty(img: str, size_mb: int, src: str | None = None) -> None:
    with open(img, "wb") as f:  # an existing file: mke2fs then does not announce creating it
        f.truncate(size_mb << 20)
    cmd = [tool("mkfs.ext4"), "-q", "-F", "-b", "4096", "-E", "root_owner=0:0"]
    if src:
        cmd += ["-d", src]
    subprocess.run(cmd + [img, f"{size_mb}M"], check=True, env=dict(os.environ, E2FSPROGS_FAKE_TIME="1700000000"))


def e2fsck_clean(img: str) -> None:
    r = subprocess.run([tool("e2fsck"), "-fn", img], capture_output=True, text=True)
    bad = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.rstrip().endswith("? no")]
    if r.returncode != 0 or bad:
        raise SystemExit(f"e2fsck -fn {img} is not clean (exit {r.returncode}):\n{r.stdout[-3000:]}")


# ---- Nuwa phases (run in a child process) ----------------------------------------------------


def nuwa_populate(img: str, src: str) -> dict:
    """Copy the host tree into the image: contents, links, devices, owners, modes, xattrs, times."""
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4

    seen: dict[tuple[int, int], str] = {}
    dirs: list[tuple[str, os.stat_result]] = []
    n = 0
    with RawFile(img, writable=True) as dev:
        fs = open_ext4(dev, writable=True)
        for dp, dns, fns in os.walk(src):
            rel_dir = "/" + os.path.relpath(dp, src) if dp != src else "/"
            for name in sorted(dns) + sorted(fns):
                host = os.path.join(dp, name)
                p = (rel_dir.rstrip("/") + "/" + name)
                st = os.lstat(host)
                n += 1
                if stat.S_ISDIR(st.st_mode):
                    fs.mkdir(p, stat.S_IMODE(st.st_mode))
                    dirs.append((p, st))
                    continue
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in seen:
                    fs.link(seen[key], p)
                    continue
                seen[key] = p
                if stat.S_ISREG(st.st_mode):
                    h = fs.open_handle(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with open(host, "rb") as f:
                        off = 0
                        while True:
                            chunk = f.read(CHUNK)
                            if not chunk:
                                break
                            h.pwrite(off, chunk)
                            off += len(chunk)
                    h.close()
                elif stat.S_ISLNK(st.st_mode):
                    fs.symlink(os.readlink(host), p)
                else:
                    fs.mknod(p, st.st_mode, st.st_rdev)
                _attrs(fs, host, p, st)
        for p, st in reversed(dirs):  # after their children: ownership, modes, xattrs, mtimes
            _attrs(fs, os.path.join(src, p.lstrip("/")), p, st)
        fs.close()
    return {"paths": n}


def _attrs(fs, host: str, p: str, st: os.stat_result) -> None:
    link = stat.S_ISLNK(st.st_mode)
    fs.chown(p, st.st_uid, st.st_gid, follow_symlinks=False)
    if not link:
        fs.chmod(p, stat.S_IMODE(st.st_mode))
        for k in os.listxattr(host, follow_symlinks=False):
            fs.setxattr(p, k, os.getxattr(host, k, follow_symlinks=False))
    fs.utime(p, st.st_atime_ns, st.st_mtime_ns, follow_symlinks=False)


def nuwa_read(img: str) -> dict:
    """Walk the image and read every regular file."""
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4

    n = total = 0
    with RawFile(img) as dev:
        fs = open_ext4(dev)
        for dp, dns, fns in fs.walk("/"):
            for name in fns:
                p = dp.rstrip("/") + "/" + name
                st = fs.lstat(p)
                n += 1
                if stat.S_ISREG(st.st_mode):
                    h = fs.open_handle(p, os.O_RDONLY)
                    off = 0
                    while off < st.st_size:
                        data = h.pread(off, CHUNK)
                        if not data:
                            break
                        off += len(data)
                    h.close()
                    total += off
            n += len(dns)
        fs.close()
    return {"paths": n, "bytes": total}


def nuwa_small_files(img: str, count: int) -> dict:
    """Create then delete ``count`` small files in /many (hash-indexed)."""
    from nuwa.formats.blockdev import RawFile
    from nuwa.fs.ext4 import open_ext4

    with RawFile(img, writable=True) as dev:
        fs = open_ext4(dev, writable=True)
        t = time.perf_counter()
        for i in range(count):
            fs.write_bytes(f"/many/new-{i:05d}", b"x" * (i % 100))
        t_create = time.perf_counter() - t
        t = time.perf_counter()
        for i in range(count):
            fs.unlink(f"/many/new-{i:05d}")
        t_delete = time.perf_counter() - t
        fs.close()
    return {"create": t_create, "delete": t_delete}


def child(phase: str, *args) -> dict:
    """Run a Nuwa phase in a fresh interpreter; return its result, wall time and peak RSS."""
    code = (f"import sys, json, time; sys.path.insert(0, {os.path.join(HERE, '..')!r}); "
            f"sys.path.insert(0, {HERE!r}); import bench_ext4 as B; t = time.perf_counter(); "
            f"r = B.{phase}(*{list(args)!r}); r['seconds'] = time.perf_counter() - t; "
            f"import procs; r['rss_mb'] = procs.hwm() / 1024; print(json.dumps(r))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- the run ---------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", help="use this tree instead of the cached Debian root")
    ap.add_argument("--keep", action="store_true", help="keep the images in the work directory")
    ap.add_argument("--small-files", type=int, default=10_000)
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench_ext4 needs root (mmdebstrap --mode=root, file ownership)")
    src = a.tree or build_tree()
    paths, size = tree_size(src)
    print(f"tree: {src}: {paths} paths, {size / 1e6:.0f} MB of file data "
          f"(minbase + {', '.join(PACKAGES)})" if not a.tree else f"tree: {src}: {paths} paths, {size / 1e6:.0f} MB")
    img_mb = int(size / 2**20 * 1.4) + 400
    work = tempfile.mkdtemp(prefix="nuwa-bench-ext4-")
    try:
        ref = os.path.join(work, "mkfs-d.img")
        t_ref = timed(lambda: mkfs_empty(ref, img_mb, src))
        nuwa_img = os.path.join(work, "nuwa.img")
        mkfs_empty(nuwa_img, img_mb)
        pop = child("nuwa_populate", nuwa_img, src)
        e2fsck_clean(nuwa_img)
        print(f"populate   mkfs.ext4 -d {t_ref:8.2f} s   Nuwa {pop['seconds']:8.2f} s   ratio {pop['seconds'] / t_ref:5.2f}x"
              f"   Nuwa peak RSS {pop['rss_mb']:.0f} MB   (e2fsck -fn clean)")

        dump = os.path.join(work, "rdump")
        os.mkdir(dump)
        t_dbg = timed(lambda: subprocess.run([tool("debugfs"), "-R", f"rdump / {dump}", nuwa_img], check=True,
                                             capture_output=True))
        rd = child("nuwa_read", nuwa_img)
        shutil.rmtree(dump, ignore_errors=True)
        print(f"read back  debugfs rdump {t_dbg:8.2f} s   Nuwa {rd['seconds']:8.2f} s   ratio {rd['seconds'] / t_dbg:5.2f}x"
              f"   Nuwa peak RSS {rd['rss_mb']:.0f} MB   ({rd['paths']} paths, {rd['bytes'] / 1e6:.0f} MB)")
        os.unlink(ref)

        # A hash-indexed directory to start from: 3,000 entries by mkfs -d, indexed by e2fsck -fD.
        seed = os.path.join(work, "seed")
        os.makedirs(os.path.join(seed, "many"))
        for i in range(3000):
            with open(os.path.join(seed, "many", f"old-{i:05d}"), "wb") as f:
                f.write(b"o")
        small = os.path.join(work, "small.img")
        mkfs_empty(small, 256, seed)
        subprocess.run([tool("e2fsck"), "-fyD", small], capture_output=True)
        ref_small = os.path.join(work, "small-debugfs.img")
        shutil.copyfile(small, ref_small)
        n = a.small_files
        payload = os.path.join(work, "payload")
        with open(payload, "wb") as f:
            f.write(b"x" * 50)
        create = "".join(f"write {payload} /many/new-{i:05d}\n" for i in range(n))
        delete = "".join(f"rm /many/new-{i:05d}\n" for i in range(n))
        t_dc = timed(lambda: subprocess.run([tool("debugfs"), "-w", "-f", "-", ref_small], input=create.encode(),
                                            check=True, capture_output=True))
        t_dd = timed(lambda: subprocess.run([tool("debugfs"), "-w", "-f", "-", ref_small], input=delete.encode(),
                                            check=True, capture_output=True))
        sm = child("nuwa_small_files", small, n)
        e2fsck_clean(small)
        print(f"{n} files create  debugfs {t_dc:8.2f} s   Nuwa {sm['create']:8.2f} s   ratio {sm['create'] / t_dc:5.2f}x")
        print(f"{n} files delete  debugfs {t_dd:8.2f} s   Nuwa {sm['delete']:8.2f} s   ratio {sm['delete'] / t_dd:5.2f}x"
              f"   Nuwa peak RSS {sm['rss_mb']:.0f} MB   (e2fsck -fn clean)")
        peak = max(pop["rss_mb"], rd["rss_mb"], sm["rss_mb"])
        print(f"peak RSS of any Nuwa phase: {peak:.0f} MB (target < 200 MB)")
    finally:
        if a.keep:
            print(f"images kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
