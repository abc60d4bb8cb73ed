"""The fuzzer's write-path kind: mutated images written ``--in-place`` (tools/fuzz.py ``inplace``).

Each input is a mutated image of one of the image kinds (qcow2, GPT or MBR disk, bare ext4; the
same mutations as the read-only kinds) that Nuwa is asked to change in place: ``copy-in`` of a
small file into ``/root`` (seven inputs in ten) or ``patch --deb`` of the seed package's next
version (the rest: the dpkg database, maintainer scripts and triggers on top of the writes).

In the worker (:func:`run_inplace`, in process), after the command:

- **exit 0, copy-in**: Nuwa's own reading of the image before and after (``nuwa.diff``) must
  differ only by ``/root/payload``: a block handed out although in use would change an
  unrelated file or directory;
- **failed**: if any byte changed, the tree must still read exactly as before (a failed
  ``--in-place`` run leaves the image as it was, or recoverable to it).

In the parent (:func:`judge`), for every run that exited 0, the real tools judge the image
before (the input as generated) and after: ``qemu-img check`` must not find corruption after
where it found none before, ``qemu-io`` must open the image after (and, where it could not
open it before, Nuwa must have refused), ``e2fsck -fn`` must pass after where it passed before, and where
``qemu-img check`` found corruption before (refcounts, L1/L2 tables: what the cluster allocator
trusts) or ``e2fsck`` found the filesystem allocator's metadata inconsistent (blocks claimed
twice, in use but marked free, bitmap padding), Nuwa must have refused to write (exit 3).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile

IMAGE_KINDS = ("qcow2", "gpt", "mbr", "ext4")
FS_START = 1 << 20  # partition 1 of the seed disks (tools/fuzz_seeds.py)

#: e2fsck problems in what Nuwa's allocator trusts: pass 1's multiply-claimed blocks, and pass 5's
#: bitmap differences with a ``+`` (in use, marked free: the allocator would hand it out again);
#: a ``-`` is a leak (marked used, unused), which costs only space, as qemu-img's leaked
#: clusters do, and group counts that differ only by such leaks follow from them
ALLOCATOR_PROBLEMS = re.compile(r"multiply-claimed|(Block|Inode) bitmap differences: [^\n]*\+|"
                                r"Padding at end of block bitmap is not set")


_DEB: list[bytes] = []


def _builtin_only_deb() -> bytes:
    """The seed package with maintainer scripts that use shell builtins only: the seed images
    hold no programs, and a postinst failing on a missing program would end every patch there."""
    if not _DEB:
        import fuzz_seeds

        parts = fuzz_seeds.deb_parts()
        parts["control"]["postinst"] = (b'#!/bin/sh\nset -e\nif [ "$1" = configure ]; then\n'
                                        b'  echo "configured from ${2:-nothing}" >/dev/null\nfi\nexit 0\n')
        _DEB.append(fuzz_seeds.build_deb(parts))
    return _DEB[0]


def make(gen, rng, work: str) -> tuple[dict, bytes]:
    """An in-place input: a mutated image (``gen`` is tools/fuzz_mutate's Generator), its copy
    as it was, the payload and, for a patch, the package."""
    base = rng.choice(IMAGE_KINDS)
    job, blob = gen.make(base, work)
    before = os.path.join(work, "before.img")
    with open(before, "wb") as f:
        f.write(blob)
    job.update(kind="inplace", base=base, before=before, patch=rng.random() < 0.3)
    if job["patch"]:
        job["deb"] = os.path.join(work, "good.deb")
        with open(job["deb"], "wb") as f:
            f.write(_builtin_only_deb())
    return job, blob


def run_inplace(job: dict, run_cli) -> list[dict]:
    """Run the in-place command on ``job["path"]`` and check the tree (in the worker);
    ``run_cli`` is tools/fuzz.py's, so every kind records outcomes alike."""
    from nuwa.errors import NuwaError

    path, work = job["path"], job["work"]
    payload = os.path.join(work, "payload")
    with open(payload, "wb") as f:
        f.write(b"payload\n")
    if job["patch"]:
        argv = ["patch", path, "--deb", job["deb"], "--in-place"]
    else:
        argv = ["copy-in", path, payload, "/root", "--in-place"]
    res = run_cli(argv)
    res["cmd"] += " --in-place"
    outs = [res]
    if "exit" not in res:
        return outs
    with open(path, "rb") as a, open(job["before"], "rb") as b:
        same = a.read() == b.read()
    if res["exit"] == 0 and not job["patch"] or res["exit"] != 0 and not same:
        try:
            a = tree(job["before"])
        except NuwaError:
            return outs  # damage where the command did not look: the whole tree cannot be compared
        try:
            b = tree(path)
        except NuwaError as e:  # the before side reads: what the run wrote must read back too
            outs.append({"exit": e.exit_code, "msg": str(e)[:300], "cmd": "reading the result"})
            return outs
        changed = sorted(p for p in a.keys() | b.keys() if p != DIRS and a.get(p) != b.get(p))
        allowed = set()
        if res["exit"] == 0:  # the payload, under whatever name the walk reached /root's inode by
            root_ino = b[DIRS].get("/root")
            allowed = {p for p in changed if p.rsplit("/", 1)[-1] == "payload" and p not in a
                       and (p == "/root/payload" or b[DIRS].get(p.rsplit("/", 1)[0]) == root_ino)}
        if set(changed) - allowed:
            outs.append({"exit": res["exit"], "cmd": "tree", "changed": changed[:5],
                         "msg": f"paths changed besides the written one: {changed[:5]}"})
    res["same"] = same
    return outs


#: the key of :func:`tree`'s result under which the directories' inodes are
DIRS = "\0dirs"


def tree(path: str, limit: int = 20000) -> dict:
    """Every path of the image's root filesystem as Nuwa reads it: type, mode, owner, size,
    link target, and the sha256 of files up to 1 MiB (a fuzzed size of 2^40 bytes is read as
    holes: hashing it would take the whole time limit). Directory loops are walked once."""
    import hashlib

    import nuwa

    out: dict = {}
    dirs: dict = {}  # every directory path -> its inode (a damaged image may link one twice)
    with nuwa.open(path) as img:
        fs = img.root()
        seen, stack = set(), ["/"]
        while stack and len(out) < limit:
            d = stack.pop()
            for name in fs.readdir(d):
                p = d.rstrip("/") + "/" + name
                st = fs.lstat(p)
                rec = [st.st_mode, st.st_uid, st.st_gid, st.st_size]
                if st.is_lnk:
                    rec.append(fs.readlink(p))
                elif st.is_reg and st.st_size <= 1 << 20:
                    rec.append(hashlib.sha256(fs.read_bytes(p)).hexdigest())
                elif st.is_dir:
                    dirs[p] = st.st_ino
                    if st.st_ino not in seen:
                        seen.add(st.st_ino)
                        stack.append(p)
                out[p] = rec
    out[DIRS] = dirs
    return out


def _raw_fs(path: str, base: str, tmp: str) -> str:
    """A name e2fsck can open for the filesystem of ``path`` (qcow2 converted to raw first)."""
    if base == "ext4":
        return path
    if base == "qcow2":
        raw = os.path.join(tmp, "conv.raw")
        subprocess.run(["qemu-img", "convert", "-U", "-f", "qcow2", "-O", "raw", path, raw],
                       capture_output=True, check=False)
        if not os.path.exists(raw):
            return ""
        path = raw
    return f"{path}?offset={FS_START}"


def _e2fsck(name: str) -> tuple[int, str]:
    if not name:
        return -1, ""
    r = subprocess.run(["e2fsck", "-fn", name], capture_output=True, text=True, errors="replace", timeout=120)
    return r.returncode, r.stdout + r.stderr


def _qemu_corrupt(path: str) -> bool:
    r = subprocess.run(["qemu-img", "check", "-U", "-f", "qcow2", path], capture_output=True, text=True,
                       errors="replace", timeout=120)
    return r.returncode in (1, 2)  # 1: could not check (damaged beyond), 2: corruption; 3 is leaks only


def _qemu_opens(path: str) -> bool:
    """Would qemu open the image as a guest's disk? ``qemu-img check`` opens in check mode, which
    skips some of the open's checks (the snapshot table's place); ``qemu-io`` makes them all."""
    r = subprocess.run(["qemu-io", "-r", "-U", "-f", "qcow2", "-c", "read 0 512", path], capture_output=True,
                       text=True, errors="replace", timeout=120)
    return "Could not open" not in r.stdout + r.stderr and "can't open" not in r.stdout + r.stderr


def judge(job: dict, outs: list[dict]) -> list[str]:
    """Failure causes of an in-place run (in the parent: the real tools judge it)."""
    causes = []
    res = outs[0]
    for o in outs[1:]:
        causes.append(f"in-place {res['cmd']}: {o['cmd']}: " + re.sub(r"\d+", "N", o.get("msg", ""))[:70])
    if res.get("exit") != 0:
        return causes
    with tempfile.TemporaryDirectory(prefix="nuwa-fuzz-judge-") as tmp:
        b_rc, b_out = _e2fsck(_raw_fs(job["before"], job["base"], tmp))
        a_rc, a_out = _e2fsck(_raw_fs(job["path"], job["base"], tmp))
        if b_rc == 0 and a_rc != 0:
            first = next((ln for ln in a_out.splitlines()[1:] if ln.strip() and not ln.startswith("Pass ")), "")
            causes.append(f"in-place {res['cmd']}: e2fsck clean before, not after: " + re.sub(r"\d+", "N", first)[:80])
        if b_rc not in (0, -1) and ALLOCATOR_PROBLEMS.search(b_out):
            what = re.sub(r"\d+", "N", ALLOCATOR_PROBLEMS.search(b_out).group(0))[:60]
            causes.append(f"in-place {res['cmd']}: wrote into a filesystem whose allocation e2fsck calls "
                          f"inconsistent ({what})")
        if job["base"] == "qcow2":
            before_bad, after_bad = _qemu_corrupt(job["before"]), _qemu_corrupt(job["path"])
            if after_bad and not before_bad:
                causes.append(f"in-place {res['cmd']}: qemu-img check finds corruption after, none before")
            if before_bad:  # refcounts or tables qemu calls corrupt: what the cluster allocator trusts
                causes.append(f"in-place {res['cmd']}: wrote into a qcow2 that qemu-img check calls corrupt")
            elif not _qemu_opens(job["before"]):
                causes.append(f"in-place {res['cmd']}: wrote into a qcow2 that qemu will not open")
            if not _qemu_opens(job["path"]):
                causes.append(f"in-place {res['cmd']}: qemu will not open the qcow2 after the write")
    return causes
