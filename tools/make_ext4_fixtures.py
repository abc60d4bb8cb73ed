#!/usr/bin/env python3
"""Build the ext2/3/4 test fixtures with the real tools, deterministically.

    python3 tools/make_ext4_fixtures.py OUTDIR [NAME ...]     # default: every fixture

Each fixture is ``OUTDIR/NAME.img`` made by ``mke2fs -d`` from a source tree built here
(``OUTDIR/src-<tree>``), with pinned UUID, hash seed and time (``E2FSPROGS_FAKE_TIME``), every
atime and mtime reset first (mke2fs -d copies them), and the mke2fs configuration written into
OUTDIR and selected with ``MKE2FS_CONFIG`` (FORMAT-NOTES B2.1, B2.13). Building twice gives
byte-identical images. ``OUTDIR/NAME.json`` says how the image was made and what a reader
should find.

Fixtures (issue 3, "What must show"):

- ``debian12``  Debian 12's mke2fs.conf (no orphan_file, no metadata_csum_seed), 4 KiB blocks
- ``upstream``  upstream 1.47 mke2fs.conf (orphan_file, metadata_csum_seed)
- ``b1024``     1 KiB blocks;  ``i128``  128-byte inodes;  ``inline``  ``-O inline_data``
- ``ext2`` / ``ext3``  ``-t ext2`` / ``-t ext3`` (block maps, indirect blocks)
- ``htree``     1 KiB blocks, a directory of 5000 entries indexed by ``e2fsck -fD`` (two levels)
- ``htree4k``   upstream config, 4 KiB blocks, 3000 entries indexed by ``e2fsck -fD``
- ``journal``   debian12 left needing recovery: debugfs ``jo -c``/``jw``/``jc`` journals the
                blocks that a real debugfs edit changed (new file, new dir, chmod, unlink);
                ``NAME.expected.img`` is that edit applied directly (what replay must produce)
- ``journal_ext3``  the same on ext3 (no journal checksums, 32-bit tags)
- ``journal_badcsum``  a good transaction, then one whose commit block checksum is broken
- ``orphan_list``  debian12 with pending orphans on the legacy list (``s_last_orphan``, chained
                through ``i_dtime``): unlinked-but-allocated inodes (debugfs ``unlink`` + ``sif
                links_count 0``) of every kind, and "truncate" orphans whose ``i_size`` was cut
                below their blocks; ``orphan_ext3`` the same with block maps
- ``orphan_file``  upstream config (orphan_file) with the same orphans as entries in the orphan
                file (block checksums per FORMAT-NOTES B2.9), ``orphan_present`` set, plus one on
                the legacy list; for every orphan fixture ``NAME.expected.img`` is what
                ``e2fsck -fy`` made of it (it processes orphans as the kernel does at mount)

The main source tree holds every file type, sizes around block edges, sparse files, extent
trees deeper than the inode, indirect-block files, fast/slow symlinks, hard links, devices,
FIFOs, sockets, odd names, ids above 65535, nanosecond and out-of-range times, user/trusted
xattrs, POSIX ACLs (set with setfattr) and a capability (set with setcap).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

UUID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
HASH_SEED = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
FAKE_TIME = 1700000000
SBIN = "/usr/sbin:/sbin:/usr/bin:/bin"

DEBIAN12_CONF = """[defaults]
\tbase_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
\tdefault_mntopts = acl,user_xattr
\tenable_periodic_fsck = 0
\tblocksize = 4096
\tinode_size = 256
\tinode_ratio = 16384

[fs_types]
\text3 = {
\t\tfeatures = has_journal
\t}
\text4 = {
\t\tfeatures = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
\t}
\tsmall = {
\t\tblocksize = 1024
\t\tinode_ratio = 4096
\t}
\tfloppy = {
\t\tblocksize = 1024
\t\tinode_ratio = 8192
\t}
"""
# Upstream misc/mke2fs.conf.in since e2fsprogs commit fe341d59 (FORMAT-NOTES B2.1).
UPSTREAM_CONF = DEBIAN12_CONF.replace("dir_nlink,extra_isize", "dir_nlink,extra_isize,metadata_csum_seed,orphan_file")

#: name -> (source tree, mke2fs args, size, config, post-processing)
VARIANTS: dict[str, tuple[str, list[str], str, str, str | None]] = {
    "debian12": ("main", ["-t", "ext4", "-b", "4096"], "24M", "debian12", None),
    "upstream": ("main", ["-t", "ext4", "-b", "4096"], "24M", "upstream", None),
    "b1024": ("main", ["-t", "ext4", "-b", "1024"], "16M", "debian12", None),
    "i128": ("main", ["-t", "ext4", "-I", "128"], "16M", "debian12", None),
    "inline": ("main", ["-t", "ext4", "-O", "inline_data"], "16M", "debian12", None),
    "ext2": ("main", ["-t", "ext2"], "16M", "debian12", None),
    "ext3": ("main", ["-t", "ext3"], "16M", "debian12", None),
    "htree": ("htree", ["-t", "ext4", "-b", "1024", "-N", "8192"], "16M", "debian12", "htree"),
    "htree4k": ("htree3k", ["-t", "ext4", "-b", "4096", "-N", "8192"], "24M", "upstream", "htree"),
    "journal": ("main", ["-t", "ext4", "-b", "4096"], "24M", "debian12", "journal"),
    "journal_ext3": ("main", ["-t", "ext3"], "16M", "debian12", "journal"),
    "journal_badcsum": ("main", ["-t", "ext4", "-b", "4096"], "24M", "debian12", "journal_badcsum"),
    "orphan_list": ("orphans", ["-t", "ext4", "-b", "4096"], "24M", "debian12", "orphans"),
    "orphan_ext3": ("orphans", ["-t", "ext3"], "16M", "debian12", "orphans"),
    "orphan_file": ("orphans", ["-t", "ext4", "-b", "4096"], "24M", "upstream", "orphans"),
}


def tool(name: str) -> str:
    """Absolute path of a required tool (sbin included)."""
    path = shutil.which(name) or shutil.which(name, path=SBIN)
    if not path:
        raise SystemExit(f"make_ext4_fixtures: required tool {name!r} is not installed")
    return path


def run(args: list[str], **kw) -> subprocess.CompletedProcess:
    """Run a tool with the fixture clock; raise with its output on failure."""
    env = dict(os.environ, E2FSPROGS_FAKE_TIME=str(FAKE_TIME), E2FSCK_TIME=str(FAKE_TIME), TZ="UTC")
    env.update(kw.pop("env", {}))
    check = kw.pop("check", True)
    r = subprocess.run(args, capture_output=True, env=env, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} exited {r.returncode}:\n{r.stdout!r}\n{r.stderr!r}")
    return r


def payload(name: str, size: int) -> bytes:
    """Self-verifying deterministic bytes: the PRNG is seeded by the file's name."""
    return random.Random(name).randbytes(size)


# ---- source trees ------------------------------------------------------------------------------


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _acl(entries: list[tuple[int, int, int]]) -> str:
    """A POSIX ACL xattr value in the VFS (version 2) form, as hex for setfattr."""
    raw = b"\x02\x00\x00\x00" + b"".join(
        t.to_bytes(2, "little") + p.to_bytes(2, "little") + i.to_bytes(4, "little") for t, p, i in entries)
    return "0x" + raw.hex()


def make_main_tree(root: str) -> None:
    """The reference tree shared by most fixtures (~1.3 MB of data)."""
    os.makedirs(root)
    d = f"{root}/files"
    os.makedirs(d)
    for s in (0, 1, 59, 60, 61, 1023, 1024, 1025, 4095, 4096, 4097, 12 * 1024 + 1, 65539, 300_000):
        _write(f"{d}/size{s}", payload(f"size{s}", s))
    with open(f"{d}/sparse", "wb") as f:  # holes everywhere: reads as zeros
        f.truncate(4 << 20)
        for k in range(12):  # 12 separate extents: deeper than the 4 in the inode
            f.seek(k * 300_000 + 5000)
            f.write(payload(f"sparse{k}", 3000))
    with open(f"{d}/hole_first", "wb") as f:
        f.seek(200_000)
        f.write(b"tail")
    with open(f"{d}/all_hole", "wb") as f:
        f.truncate(100_000)
    d = f"{root}/links"
    os.makedirs(d)
    os.symlink("../files/size1", f"{d}/fast")
    os.symlink("a" * 59, f"{d}/len59")
    os.symlink("b" * 60, f"{d}/len60")
    os.symlink("/" + "dir/" * 60 + "end", f"{d}/slow")
    os.symlink("/nowhere/at/all", f"{d}/dangling")
    os.symlink("/files", f"{d}/absdir")
    os.link(f"{root}/files/size4096", f"{d}/hard1")
    os.link(f"{root}/files/size4096", f"{d}/hard2")
    d = f"{root}/special"
    os.makedirs(d)
    os.mkfifo(f"{d}/fifo")
    os.mknod(f"{d}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{d}/sda1", stat.S_IFBLK | 0o660, os.makedev(8, 1))
    os.mknod(f"{d}/bigdev", stat.S_IFCHR | 0o600, os.makedev(300, 70000))
    s = socket.socket(socket.AF_UNIX)
    s.bind(f"{d}/sock")
    s.close()
    d = f"{root}/xattrs"
    os.makedirs(d)
    for n in ("user", "cap", "acl", "many", "big"):
        _write(f"{d}/{n}", payload(n, 100))
    setfattr = tool("setfattr")
    run([setfattr, "-n", "user.comment", "-v", "hello xattr", f"{d}/user"])
    run([setfattr, "-n", "trusted.bin", "-v", "0x000102fffe", f"{d}/user"])
    run([setfattr, "-n", "user.empty", f"{d}/user"])
    run([tool("setcap"), "cap_net_raw,cap_net_bind_service+ep", f"{d}/cap"])
    acl = _acl([(0x01, 6, 0xFFFFFFFF), (0x02, 4, 1000), (0x04, 4, 0xFFFFFFFF), (0x08, 5, 1001),
                (0x10, 5, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)])
    run([setfattr, "-n", "system.posix_acl_access", "-v", acl, f"{d}/acl"])
    for i in range(12):  # more than the inode holds: spills into an xattr block
        run([setfattr, "-n", f"user.attr{i:02d}", "-v", "0x" + payload(f"x{i}", 16 + 4 * i).hex(), f"{d}/many"])
    run([setfattr, "-n", "user.large", "-v", "0x" + payload("large", 700).hex(), f"{d}/big"])
    os.makedirs(f"{d}/defacl")
    run([setfattr, "-n", "system.posix_acl_default", "-v", acl, f"{d}/defacl"])
    d = f"{root}/names"
    os.makedirs(d)
    for n in (b"space name", "\u00fcn\u00efc\u00f6d\u00e9".encode(), b"x" * 255, b".hidden", b"tab\there",
              b"latin1-\xe9\xff", b"-dash"):
        _write(os.path.join(d.encode(), n), n)
    d = f"{root}/lindir"
    os.makedirs(d)
    for i in range(220):  # several linear directory blocks (mkfs -d never indexes)
        _write(f"{d}/entry-{i:04d}-{'n' * (i % 37)}", payload(f"e{i}", i % 90))
    d = f"{root}/perm"
    os.makedirs(f"{d}/sticky")
    _write(f"{d}/suid", b"#!/bin/sh\n")
    _write(f"{d}/sgid", b"x")
    _write(f"{d}/none", b"x")
    _write(f"{d}/owned", b"owned")
    _write(f"{d}/bigids", b"ids")
    os.chmod(f"{d}/suid", 0o4755)
    os.chmod(f"{d}/sgid", 0o2711)
    os.chmod(f"{d}/none", 0)
    os.chmod(f"{d}/sticky", 0o1777)
    os.chown(f"{d}/owned", 1000, 1001)
    os.chown(f"{d}/bigids", 70000, 123456)
    os.lchown(f"{root}/links/fast", 1000, 1000)
    os.makedirs(f"{root}/deep/a/b/c/d/e/f/g")
    _write(f"{root}/deep/a/b/c/d/e/f/g/leaf", b"leaf")
    os.makedirs(f"{root}/empty")
    os.makedirs(f"{root}/journal/victimdir")
    _write(f"{root}/journal/target.txt", payload("target", 5000))
    _write(f"{root}/journal/victim", payload("victim", 10))
    _write(f"{root}/times", b"times")
    _write(f"{root}/times_old", b"old")


def make_htree_tree(root: str, n: int) -> None:
    """One big directory (``/many``) for ``e2fsck -fD`` to index, plus a subdirectory."""
    os.makedirs(f"{root}/many/sub")
    for i in range(n):
        _write(f"{root}/many/file-{i:05d}-{'q' * (i % 29)}", payload(f"h{i}", i % 40))
    _write(f"{root}/many/\u00e9t\u00e9-non-ascii", b"e")


def pin_times(root: str) -> None:
    """Every atime and mtime fixed (deepest first so directory mtimes stay put), some with ns."""
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames + dirnames:
            p = os.path.join(dirpath, name)
            h = int(hashlib.sha256(os.fsencode(os.path.relpath(p, root))).hexdigest()[:8], 16)
            mtime = (FAKE_TIME - 86400 * (h % 1000)) * 10**9 + (h % 1000) * 1_000_001
            os.utime(p, ns=(FAKE_TIME * 10**9, mtime), follow_symlinks=False)
    times = os.path.join(root, "times")
    if os.path.exists(times):  # beyond 2038 and before 1970: the extra epoch bits
        os.utime(times, ns=(FAKE_TIME * 10**9, (2**31 + 12345) * 10**9 + 987654321), follow_symlinks=False)
    old = os.path.join(root, "times_old")
    if os.path.exists(old):
        os.utime(old, ns=(FAKE_TIME * 10**9, -1_000_000 * 10**9 + 5), follow_symlinks=False)
    os.utime(root, ns=(FAKE_TIME * 10**9, FAKE_TIME * 10**9))


def make_orphan_tree(root: str) -> None:
    """Files to be orphaned after mke2fs: ``/o/gone_*`` lose their last link, ``/o/trunc*`` are
    truncate orphans (``i_size`` cut below their blocks), ``/o/keep`` stays as it was."""
    d = f"{root}/o"
    os.makedirs(f"{d}/gone_dir")
    os.makedirs(f"{d}/sub")
    for n in ("gone_big", "trunc", "trunc_xattr", "keep"):
        _write(f"{d}/{n}", payload(n, 300_000))
    for n in ("gone_sparse", "trunc_sparse"):
        with open(f"{d}/{n}", "wb") as f:
            for k in range(12):  # 12 extents: an extent-tree block (or indirect blocks) to free
                f.seek(k * 150_000 + 1000)
                f.write(payload(f"{n}{k}", 3000))
    _write(f"{d}/gone_xattr", payload("gone_xattr", 100))
    _write(f"{d}/sub/gone_inner", payload("gone_inner", 5000))
    setfattr = tool("setfattr")
    for n in ("gone_xattr", "trunc_xattr"):  # an xattr block to release (or keep) with the inode
        run([setfattr, "-n", "user.large", "-v", "0x" + payload(n + "x", 700).hex(), f"{d}/{n}"])
    os.symlink("/" + "slow/" * 30, f"{d}/gone_slow")
    os.mkfifo(f"{d}/gone_fifo")
    _write(f"{d}/hard1", payload("hard", 9000))
    os.link(f"{d}/hard1", f"{d}/hard2")


TREES = {"main": make_main_tree, "orphans": make_orphan_tree, "htree": lambda r: make_htree_tree(r, 5000),
         "htree3k": lambda r: make_htree_tree(r, 3000)}


def source_tree(outdir: str, tree: str) -> str:
    """``OUTDIR/src-<tree>``, built once (atomically: build in a temp dir, then rename)."""
    dest = os.path.join(outdir, f"src-{tree}")
    if os.path.isdir(dest):
        return dest
    tmp = tempfile.mkdtemp(prefix=f".src-{tree}-", dir=outdir)
    root = os.path.join(tmp, "t")
    TREES[tree](root)
    pin_times(root)
    try:
        os.rename(root, dest)
    except OSError:
        if not os.path.isdir(dest):
            raise
    shutil.rmtree(tmp, ignore_errors=True)
    return dest


# ---- images ------------------------------------------------------------------------------------


def mkfs(outdir: str, path: str, src: str | None, args: list[str], size: str, conf: str) -> None:
    """``mke2fs -d`` with every source of variation pinned."""
    conf_path = os.path.join(outdir, f"mke2fs-{conf}.conf")
    if not os.path.exists(conf_path):
        with open(conf_path + ".tmp", "w") as f:
            f.write(DEBIAN12_CONF if conf == "debian12" else UPSTREAM_CONF)
        os.replace(conf_path + ".tmp", conf_path)
    cmd = [tool("mke2fs"), "-q", "-F", "-U", UUID, "-E", f"hash_seed={HASH_SEED},root_owner=0:0", *args]
    if src:
        # Reading the source during an earlier build moved its atimes (relatime): pin again.
        pin_times(src)
        cmd += ["-d", src]
    run(cmd + [path, size], env={"MKE2FS_CONFIG": conf_path})
    if src:
        pin_ctimes(path, src)


def pin_ctimes(image: str, src: str) -> None:
    """Set every inode's ctime to the fixture clock.

    mke2fs -d copies ``st_ctime`` from the source, which no user-space call can set; so the
    inodes are found (``ls -p`` of every source directory) and rewritten with ``sif``, which
    also refreshes their checksums.
    """
    dirs = ["/"] + ["/" + os.path.relpath(os.path.join(dp, d), src) for dp, dns, _ in os.walk(src) for d in dns]
    out = debugfs(image, "".join(f'ls -p "{d}"\n' for d in dirs))
    inos = {2, 11}
    for line in out.splitlines():
        parts = line.split("/")
        if line.startswith("/") and len(parts) >= 7 and parts[1].isdigit() and int(parts[1]):
            inos.add(int(parts[1]))
    debugfs(image, "".join(f"sif <{i}> ctime @{FAKE_TIME}\n" for i in sorted(inos)), write=True)


def debugfs(image: str, script: str, write: bool = False) -> str:
    """Run a debugfs script; return its stdout."""
    args = [tool("debugfs")] + (["-w"] if write else []) + ["-f", "-", image]
    return run(args, input=script.encode()).stdout.decode(errors="replace")


def block_size(image: str) -> int:
    out = run([tool("dumpe2fs"), "-h", image]).stdout.decode()
    return int(re.search(r"^Block size:\s+(\d+)", out, re.M).group(1))


def journal_edit(outdir: str, image: str, expected: str) -> list[int]:
    """Make ``expected`` = ``image`` + a real debugfs edit; return the fs blocks that changed."""
    shutil.copyfile(image, expected)
    newfile = os.path.join(outdir, "journal-newfile.bin")
    with open(newfile, "wb") as f:
        f.write(payload("journal-new", 6000))
    debugfs(expected, "\n".join([
        f"write {newfile} /journal/new.bin",
        "mkdir /journal/newdir",
        "sif /journal/target.txt mode 0100600",
        "sif /journal/target.txt uid 4242",
        "rm /journal/victim",
        "",
    ]), write=True)
    bs = block_size(image)
    jblocks = set(int(x) for x in debugfs(image, "blocks <8>\n").split() if x.isdigit())
    changed = []
    with open(image, "rb") as a, open(expected, "rb") as b:
        n = 0
        while True:
            x, y = a.read(bs), b.read(bs)
            if not x:
                break
            if x != y and n not in jblocks:
                changed.append(n)
            n += 1
    return changed


def journal_fixture(outdir: str, image: str, name: str, bad_commit: bool) -> dict:
    """Journal the blocks of a real edit into ``image`` (debugfs jo/jw/jc), leaving needs_recovery."""
    expected = os.path.join(outdir, f"{name}.expected.img")
    changed = journal_edit(outdir, image, expected)
    bs = block_size(image)
    blob = os.path.join(outdir, f"{name}.blocks.bin")
    with open(expected, "rb") as f, open(blob, "wb") as out:
        for b in changed:
            f.seek(b * bs)
            out.write(f.read(bs))
    csum = "-c" if "metadata_csum" in run([tool("dumpe2fs"), "-h", image]).stdout.decode() else ""
    half = max(1, len(changed) // 2)
    first, second = changed[:half], changed[half:]
    # Two transactions: the second also revokes nothing but rewrites part of the first's blocks.
    blob2 = os.path.join(outdir, f"{name}.blocks2.bin")
    with open(expected, "rb") as f, open(blob2, "wb") as out:
        for b in second:
            f.seek(b * bs)
            out.write(f.read(bs))
    script = [f"jo {csum}".strip(), f"jw -b {','.join(map(str, first))} {blob}"]
    if second:
        script.append(f"jw -b {','.join(map(str, second))} {blob2}")
    script.append("jc")
    debugfs(image, "\n".join(script) + "\n", write=True)
    os.unlink(blob)
    os.unlink(blob2)
    pin_commit_times(image, bs)
    info = {"expected_image": os.path.basename(expected), "journalled_blocks": changed,
            "transactions": 1 + bool(second)}
    if bad_commit:
        # Break the checksum of the last transaction's commit block (one byte in its padding).
        log = debugfs(image, "logdump\n")
        commits = [int(m.group(1)) for m in re.finditer(r"type 2 \(commit block\) at block (\d+)", log)]
        phys = inode_blocks(image, 8)[commits[-1]]
        with open(image, "r+b") as f:
            f.seek(phys * bs + 0x40)
            byte = f.read(1)
            f.seek(phys * bs + 0x40)
            f.write(bytes([byte[0] ^ 0xFF]))
        info.update(bad_commit_transaction=len(commits), bad_commit_log_block=commits[-1])
        os.unlink(expected)
        info["expected_image"] = None
    return info


def inode_blocks(image: str, ino: int) -> list[int]:
    """Physical block of each logical block of inode ``ino``, from debugfs ``stat``.

    (``blocks`` would also list indirect and extent-tree blocks, so the ``(first-last):phys``
    ranges are parsed instead, skipping the ``(IND)``/``(DIND)``/``(TIND)``/``(ETB…)`` ones.)
    """
    out = debugfs(image, f"stat <{ino}>\n")
    text = out[out.index("BLOCKS:") if "BLOCKS:" in out else out.index("EXTENTS:"):]
    mapping: dict[int, int] = {}
    for m in re.finditer(r"\((\d+)(?:-(\d+))?\):(\d+)(?:-(\d+))?", text):
        lo, hi, plo = int(m.group(1)), int(m.group(2) or m.group(1)), int(m.group(3))
        for k in range(hi - lo + 1):
            mapping[lo + k] = plo + k
    return [mapping[i] for i in range(len(mapping))]


def _crc32c_raw(seed: int, data: bytes) -> int:
    import crc32c  # the raw-register convention of FORMAT-NOTES B0

    return ~crc32c.crc32c(data, ~seed & 0xFFFFFFFF) & 0xFFFFFFFF


def pin_commit_times(image: str, bs: int) -> None:
    """debugfs stamps commit blocks with the real clock: rewrite ``h_commit_sec``/``nsec``.

    Commit *i* gets ``FAKE_TIME + i`` (increasing, as a real log has), and its checksum is
    recomputed when the journal has csum v2/v3 (journal.rst "Commit Block").
    """
    log = debugfs(image, "logdump\n")
    commits = [int(m.group(1)) for m in re.finditer(r"type 2 \(commit block\) at block (\d+)", log)]
    jb = inode_blocks(image, 8)
    with open(image, "r+b") as f:
        f.seek(jb[0] * bs)
        jsb = f.read(1024)
        csum = int.from_bytes(jsb[0x28:0x2C], "big") & 0x18  # CSUM_V2 | CSUM_V3
        seed = _crc32c_raw(0xFFFFFFFF, jsb[0x30:0x40])
        for i, lb in enumerate(commits):
            f.seek(jb[lb] * bs)
            block = bytearray(f.read(bs))
            block[0x30:0x3C] = (FAKE_TIME + i).to_bytes(8, "big") + bytes(4)
            if csum:
                block[0x10:0x14] = bytes(4)
                block[0x10:0x14] = _crc32c_raw(seed, bytes(block)).to_bytes(4, "big")
            f.seek(jb[lb] * bs)
            f.write(block)


#: the orphans every orphan fixture gets: path -> new i_size for a truncate orphan, None when
#: its last link goes (``/o/hard2`` keeps the inode linked as ``/o/hard1``: an orphan with
#: links left and nothing to truncate)
ORPHANS: dict[str, int | None] = {
    "/o/gone_big": None, "/o/gone_sparse": None, "/o/gone_xattr": None, "/o/gone_dir": None,
    "/o/gone_slow": None, "/o/gone_fifo": None, "/o/sub/gone_inner": None, "/o/hard2": None,
    "/o/trunc": 5000, "/o/trunc_sparse": 700_000, "/o/trunc_xattr": 4097,
}


def _inode_numbers(image: str, paths: list[str]) -> dict[str, int]:
    out = debugfs(image, "".join(f'stat "{p}"\n' for p in paths))
    inos = [int(m.group(1)) for m in re.finditer(r"^Inode: (\d+)", out, re.M)]
    if len(inos) != len(paths):
        raise RuntimeError(f"debugfs stat found {len(inos)} of {len(paths)} inodes:\n{out}")
    return dict(zip(paths, inos))


def _dumpe2fs_field(image: str, field: str) -> str | None:
    out = run([tool("dumpe2fs"), "-h", image]).stdout.decode()
    m = re.search(rf"^{re.escape(field)}:\s+(.*)$", out, re.M)
    return m.group(1).strip() if m else None


def orphan_fixture(outdir: str, image: str, name: str) -> dict:
    """Leave ``image`` with pending orphans (see :data:`ORPHANS`), then store what e2fsck -fy
    makes of it as ``NAME.expected.img``.

    The unlinked inodes keep their blocks, xattrs and bitmap bits, as after a crash with the
    files still open (debugfs ``unlink`` removes the entry only). A removed directory's parent
    loses its link, as ``rmdir`` does. Legacy list: ``s_last_orphan`` and ``i_dtime`` chain;
    orphan file: le32 inode numbers in its first block, the block checksum recomputed
    (``ext2fs_do_orphan_file_block_csum``: ino, generation, le64 physical block, entries).
    """
    inos = _inode_numbers(image, list(ORPHANS) + ["/o"])
    script = []
    for p, size in ORPHANS.items():
        if size is None:
            script.append(f'unlink "{p}"')
            script.append(f"sif <{inos[p]}> links_count {0 if p != '/o/hard2' else 1}")
        else:
            script.append(f"sif <{inos[p]}> size {size}")
    script.append("sif /o links_count 3")  # /o, its '.', and sub/..; gone_dir's '..' is gone
    orphans = [inos[p] for p in ORPHANS]
    use_file = "orphan_file" in (_dumpe2fs_field(image, "Filesystem features") or "")
    legacy = orphans if not use_file else orphans[-1:]
    in_file = [] if not use_file else orphans[:-1]
    script.append(f"ssv last_orphan {legacy[0]}")
    for a, b in zip(legacy, legacy[1:]):
        script.append(f"sif <{a}> dtime {b}")
    debugfs(image, "\n".join(script) + "\n", write=True)
    if in_file:
        ofino = int(_dumpe2fs_field(image, "Orphan file inode"))
        gen = int(re.search(r"Generation: (\d+)", debugfs(image, f"stat <{ofino}>\n")).group(1))
        seed = int(_dumpe2fs_field(image, "Checksum seed"), 16)
        bs = block_size(image)
        phys = inode_blocks(image, ofino)[0]
        with open(image, "r+b") as f:
            f.seek(phys * bs)
            block = bytearray(f.read(bs))
            if int.from_bytes(block[bs - 8 : bs - 4], "little") != 0x0B10CA04:
                raise RuntimeError("orphan file block 0 lacks its magic")
            for i, ino in enumerate(in_file):
                block[4 * i : 4 * i + 4] = ino.to_bytes(4, "little")
            crc = _crc32c_raw(seed, ofino.to_bytes(4, "little") + gen.to_bytes(4, "little")
                              + phys.to_bytes(8, "little") + bytes(block[: bs - 8]))
            block[bs - 4 :] = crc.to_bytes(4, "little")
            f.seek(phys * bs)
            f.write(block)
        debugfs(image, "feature orphan_present\n", write=True)
    expected = os.path.join(outdir, f"{name}.expected.img")
    shutil.copyfile(image, expected)
    r = run([tool("e2fsck"), "-fy", expected], check=False)
    log = r.stdout.decode()
    if r.returncode not in (0, 1) or log.count("orphaned inode") != len(orphans):
        raise RuntimeError(f"e2fsck -fy did not process the {len(orphans)} orphans ({r.returncode}):\n{log}")
    r = run([tool("e2fsck"), "-fn", expected], check=False)
    if r.returncode != 0:
        raise RuntimeError(f"e2fsck -fn is not clean after e2fsck -fy:\n{r.stdout.decode()}")
    return {"expected_image": os.path.basename(expected), "orphans": {p: inos[p] for p in ORPHANS},
            "legacy_list": legacy, "orphan_file_entries": in_file, "e2fsck_log": log}


def build(outdir: str, name: str) -> str:
    """Build fixture ``name`` into ``outdir`` unless present; return the image path."""
    image = os.path.join(outdir, f"{name}.img")
    if os.path.exists(image):
        return image
    tree, args, size, conf, post = VARIANTS[name]
    src = source_tree(outdir, tree)
    tmp = os.path.join(outdir, f".{name}.{os.getpid()}.img")
    mkfs(outdir, tmp, src, args, size, conf)
    info: dict = {"name": name, "source": os.path.basename(src), "mke2fs": args, "size": size,
                  "config": conf, "post": post, "uuid": UUID, "hash_seed": HASH_SEED, "fake_time": FAKE_TIME}
    if post == "htree":
        r = run([tool("e2fsck"), "-fyD", tmp], check=False)
        if r.returncode not in (0, 1):
            raise RuntimeError(f"e2fsck -fyD {tmp}: {r.returncode}\n{r.stdout!r}")
    elif post in ("journal", "journal_badcsum"):
        # The expected image must sit beside the final name: build under the final prefix.
        info.update(journal_fixture(outdir, tmp, name, post == "journal_badcsum"))
    elif post == "orphans":
        info.update(orphan_fixture(outdir, tmp, name))
    with open(os.path.join(outdir, f"{name}.json.tmp"), "w") as f:
        json.dump(info, f, indent=1)
    os.replace(os.path.join(outdir, f"{name}.json.tmp"), os.path.join(outdir, f"{name}.json"))
    os.replace(tmp, image)
    return image


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    outdir = argv[0]
    os.makedirs(outdir, exist_ok=True)
    for name in argv[1:] or list(VARIANTS):
        if name not in VARIANTS:
            print(f"unknown fixture {name!r}; known: {', '.join(VARIANTS)}", file=sys.stderr)
            return 2
        path = build(outdir, name)
        print(f"{path}  {hashlib.sha256(open(path, 'rb').read()).hexdigest()[:16]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
