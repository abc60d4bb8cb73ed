"""The fuzzer's mutations: where each structure of a seed lies, and how to change it.

:class:`Generator` maps every seed once (with Nuwa's own readers, on the seed the real tools
made) into regions ``(kind, offset, length, reseal)`` and then makes inputs: 1-4 mutations on
regions of the chosen structure, each one of

- a field (1, 2, 4 or 8 bytes, aligned, in the structure's byte order) set to a boundary value
  (0, 1, all ones, the signed limits, the old value +-1 or doubled);
- 1-3 flipped bits; a run of random, zero or 0xff bytes; bytes copied from another region of
  the same kind (a directory entry pointing at an ancestor, an L2 entry pointing at metadata);
- for directory blocks: one entry's inode, rec_len, name_len or name (NUL, '/', '..');

after which the checksum covering the region is recomputed (in 3 inputs of 4), so the mutation
reaches the meaning behind the check. Packages are mutated as parts (control fields, conffiles,
triggers, md5sums, maintainer scripts, data-tar entries: names, types, link targets, duplicates)
and rebuilt, or their ar and tar headers hit directly; dpkg databases and scripts as text.
"""

from __future__ import annotations

import os
import json
import random
import struct
import zlib

import fuzz_seeds
from nuwa.formats.blockdev import RawFile
from nuwa.formats.qcow2 import Qcow2Image
from nuwa.fs.ext4 import csum, open_ext4

INTERESTING = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
               0xFFFFFFFF, 1 << 32, (1 << 63) - 1, 1 << 63, (1 << 64) - 1)
WORDS = ("", "installee", "unknown", "-1", "999999999999999999999", "x" * 5000, "\udcff\udcfe", "a b", "a,b",
         "(>= 1)", "|", "..", "/", "../../etc/passwd", "\t", "install ok", "purge", "half-configured",
         "not-installed ok installed", "hold reinstreq", "libc6 (>> 2.36) | foo", "2:1.0-1~rc", "1.0-", "%s")
SNIPPETS = ("\0", "\udcff", "\n", " ", ":", "\t", '"', "'", "$(", "`", "{", "}", "(", ")", ";", "&", "|", "<<EOF\n",
            "#", "\\", "${x:-", "$((1/0))", "case x in\n", "fi\n", "done\n", "*", "[", "]]", "!")


def _field(rng: random.Random, buf: bytearray, off: int, length: int, big: bool) -> None:
    width = rng.choice([w for w in (1, 2, 4, 8) if w <= length] or [1])
    pos = off + rng.randrange(0, max(1, length - width + 1)) // width * width
    order = "big" if big else "little"
    old = int.from_bytes(buf[pos : pos + width], order)
    choice = rng.random()
    if choice < 0.6:
        v = rng.choice(INTERESTING)
    elif choice < 0.8:
        v = old + rng.choice((-1, 1))
    else:
        v = old * 2 or rng.randrange(1 << 16)
    buf[pos : pos + width] = (v % (1 << (8 * width))).to_bytes(width, order)


def mutate_region(rng: random.Random, buf: bytearray, region: tuple, same_kind: list, big: bool) -> None:
    """One mutation inside ``region`` of ``buf``."""
    kind, off, length, _reseal = region
    op = rng.random()
    if kind == "dir" and op < 0.4:
        _mutate_dirent(rng, buf, off, length, same_kind)
    elif op < 0.55:
        _field(rng, buf, off, length, big)
    elif op < 0.7:
        for _ in range(rng.randint(1, 3)):
            p = off + rng.randrange(length)
            buf[p] ^= 1 << rng.randrange(8)
    elif op < 0.85:
        n = min(length, rng.randint(1, 16))
        p = off + rng.randrange(length - n + 1)
        buf[p : p + n] = rng.choice((lambda: rng.randbytes(n), lambda: bytes(n), lambda: b"\xff" * n))()
    else:
        other = rng.choice(same_kind)
        n = min(length, other[2], rng.choice((8, 12, 16, 32, 128)))
        src = other[1] + rng.randrange(other[2] - n + 1)
        dst = off + rng.randrange(length - n + 1)
        buf[dst : dst + n] = buf[src : src + n]


def _mutate_dirent(rng: random.Random, buf: bytearray, off: int, length: int, dirs: list) -> None:
    # walk the linear entries (inode u32, rec_len u16, name_len u8, file_type u8, name)
    entries, p = [], off
    while p + 8 <= off + length:
        rec = struct.unpack_from("<H", buf, p + 4)[0]
        entries.append(p)
        if rec < 8:
            break
        p += rec
    if not entries:
        return
    e = rng.choice(entries)
    what = rng.randrange(5)
    if what == 0:
        struct.pack_into("<I", buf, e, rng.choice((2, 11, 12, 0, 1, 7, 0xFFFFFFFF, rng.randrange(1, 600))))
    elif what == 1:
        struct.pack_into("<H", buf, e + 4, rng.choice((0, 1, 8, 12, 4096, 0xFFFF)))
    elif what == 2:
        buf[e + 6] = rng.choice((0, 1, 2, 255))
    elif what == 3:
        n = buf[e + 6]
        if n:
            buf[e + 8 + rng.randrange(n)] = rng.choice(b"\0/.\xff")
    else:
        buf[e + 7] = rng.randrange(9)


class Generator:
    """Makes mutated inputs of each kind from the seeds (regions mapped once)."""

    def __init__(self, seeds: dict, rng: random.Random):
        self.seeds = seeds
        self.rng = rng
        self.bytes = {}
        for name in ("root.ext4", "disk.gpt.raw", "disk.mbr.raw", "disk.qcow2", "good.deb"):
            with open(seeds[name], "rb") as f:
                self.bytes[name] = f.read()
        self.ext4, self.ext4_ctx = ext4_regions(seeds["root.ext4"])
        self.qcow2 = qcow2_regions(seeds["disk.qcow2"])
        self.gpt = [("gpt_hdr", 512, 92, "gpt_hdr"), ("gpt_ent", 1024, 128 * 128, "gpt_ent"),
                    ("mbr", 446, 64, None)]
        self.mbr = [("mbr", 446, 64, None), ("mbr", 510, 2, None)]
        self.scripts = fuzz_seeds.script_seeds()

    # --- images ---

    def _apply(self, buf: bytearray, regions: list, base: int, big: bool, ctx: dict | None) -> None:
        rng = self.rng
        kinds = sorted({r[0] for r in regions})
        kind = rng.choice(kinds)
        of_kind = [r for r in regions if r[0] == kind]
        shifted = [(k, o + base, n, s) for k, o, n, s in of_kind]
        for _ in range(rng.choice((1, 1, 1, 2, 3, 4))):
            region = rng.choice(shifted)
            mutate_region(rng, buf, region, shifted, big)
            if region[3] and rng.random() < 0.75:
                reseal(buf, region, base, ctx)

    def make(self, kind: str, work: str) -> tuple[dict, bytes]:
        """A mutated input of ``kind`` (files written under ``work``): (job, input bytes)."""
        rng = self.rng
        if kind in ("qcow2", "gpt", "mbr", "ext4"):
            if kind == "qcow2":
                buf = bytearray(self.bytes["disk.qcow2"])
                self._apply(buf, self.qcow2, 0, True, None)
                if rng.random() < 0.1:
                    del buf[rng.randrange(1, len(buf) // 4096 + 1) * 4096 - rng.choice((0, 1, 512)):]
            elif kind == "ext4":
                buf = bytearray(self.bytes["root.ext4"])
                self._apply(buf, self.ext4, 0, False, self.ext4_ctx)
            else:
                buf = bytearray(self.bytes[f"disk.{kind}.raw"])
                if rng.random() < 0.5:
                    self._apply(buf, self.gpt if kind == "gpt" else self.mbr, 0, False, None)
                else:
                    self._apply(buf, self.ext4, fuzz_seeds.FS_START, False, self.ext4_ctx)
            path = os.path.join(work, "input.img")
            with open(path, "wb") as f:
                f.write(buf)
            return {"kind": kind, "path": path, "work": work}, bytes(buf)
        if kind == "deb":
            data = self.make_deb()
            path = os.path.join(work, "input.deb")
            with open(path, "wb") as f:
                f.write(data)
            return {"kind": kind, "path": path, "work": work}, data
        if kind == "dpkgdb":
            status = fuzz_seeds.STATUS
            info = {"fuzzpkg.list": "/.\n/etc\n/etc/fuzzpkg.conf\n", "fuzzpkg.conffiles": "/etc/fuzzpkg.conf\n",
                    "fuzzpkg.md5sums": "5d41402abc4b2a76b9719d911017c592  etc/fuzzpkg.conf\n",
                    "fuzzpkg.postinst": fuzz_seeds.SCRIPT, "base-files.list": "/.\n/etc\n/etc/issue\n"}
            if rng.random() < 0.6:
                status = mutate_text(rng, status)
            else:
                k = rng.choice(sorted(info))
                info[k] = mutate_text(rng, info[k])
            deb = os.path.join(work, "good.deb")
            with open(deb, "wb") as f:
                f.write(self.bytes["good.deb"])
            enc = {k: v.encode("utf-8", "surrogateescape").decode("latin-1") for k, v in info.items()}
            st = status.encode("utf-8", "surrogateescape").decode("latin-1")
            blob = json.dumps({"status": st, "info": enc}).encode()  # tools/fuzz.py --replay reads it
            return {"kind": kind, "deb": deb, "status": st, "info": enc, "work": work}, blob
        # three in four from the small seed (fast: many inputs), one from the real scripts (deep:
        # a real script parses in about 5 ms, the seed in 0.3 ms)
        text = mutate_text(rng, fuzz_seeds.SCRIPT if rng.random() < 0.75 else rng.choice(self.scripts))
        data = text.encode("utf-8", "surrogateescape")
        return {"kind": kind, "text": data.decode("latin-1"), "work": work}, data

    def make_deb(self) -> bytes:
        """A package mutated as parts (then rebuilt) or in its ar/tar headers."""
        rng = self.rng
        parts = fuzz_seeds.deb_parts()
        how = rng.random()
        if how < 0.3:
            name = rng.choice(sorted(parts["control"]))
            text = parts["control"][name].decode()
            parts["control"][name] = mutate_text(rng, text).encode("utf-8", "surrogateescape")
        elif how < 0.6:
            data = parts["data"]
            i = rng.randrange(len(data))
            name, kind, val, mode = data[i]
            op = rng.randrange(7)
            if op == 0:
                data.append(data[i])  # the same path twice
            elif op == 1:
                new = rng.choice(("file", "symlink", "dir"))  # the same path, another type
                data.append((name.rstrip("/"), new, {"file": b"x", "symlink": "data", "dir": None}[new], mode))
            elif op == 2:
                data[i] = (rng.choice(("/etc/x", "./../x", "./a/../../x", "./usr/share/fuzzpkg/link/x",
                                       "./\udcff", "./" + "n" * 300, "./a\nb")), kind, val, mode)
            elif op == 3:
                data.append(("./usr/share/fuzzpkg/h2", "hardlink", rng.choice(("./nope", "/etc/passwd", "..",
                                                                               "./usr/share/fuzzpkg/")), 0o644))
            elif op == 4:
                data.append(("./usr/share/fuzzpkg/s2", "symlink", rng.choice(("/", "../../..", "", "/etc/passwd")),
                             0o777))
            elif op == 5:
                data[i] = (name, kind, val, rng.choice((0o4777, 0o7777, 0, 0o1000000)))
            else:
                del data[i]
        raw = bytearray(fuzz_seeds.build_deb(parts, compress=rng.choice(("gz", "none"))))
        if how >= 0.6:
            headers, p = [], 8
            while p + 60 <= len(raw):
                headers.append(p)
                size = int(raw[p + 48 : p + 58].strip() or b"0")
                p += 60 + size + (size & 1)
            h = rng.choice(headers)
            if rng.random() < 0.5:
                f_off, f_len = rng.choice(((0, 16), (16, 12), (40, 8), (48, 10), (58, 2)))
                raw[h + f_off : h + f_off + f_len] = rng.choice(
                    (b" " * f_len, b"9" * f_len, b"-1".ljust(f_len), rng.randbytes(f_len), b"0".ljust(f_len)))
            else:
                mutate_region(rng, raw, ("tar", h + 60, min(len(raw) - h - 60, 2048), None),
                              [("tar", h + 60, 512, None)], False)
        return bytes(raw)


def mutate_text(rng: random.Random, text: str) -> str:
    """One to three line, word or character mutations of ``text``."""
    for _ in range(rng.choice((1, 1, 2, 3))):
        lines = text.split("\n")
        op = rng.randrange(6)
        i = rng.randrange(len(lines))
        if op == 0 and len(lines) > 1:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            words = lines[i].split(" ")
            words[rng.randrange(len(words))] = rng.choice(WORDS)
            lines[i] = " ".join(words)
        elif op == 3:
            p = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:p] + rng.choice(SNIPPETS) + lines[i][p:]
        elif op == 4:
            lines = lines[: rng.randrange(len(lines) + 1)]
        else:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        text = "\n".join(lines)
    return text


# --- maps of the seeds ------------------------------------------------------------------------------


def qcow2_regions(path: str) -> list:
    """Header, L1, every L2 table, refcount table and blocks of the qcow2 seed."""
    img = Qcow2Image(path, open_backing=False)
    try:
        h, cs = img.header, img.cluster_size
        out = [("header", 0, 104, None), ("l1", h.l1_table_offset, max(8, h.l1_size * 8), None),
               ("reftable", h.refcount_table_offset, h.refcount_table_clusters * cs, None)]
        for e in img.l1:
            off = e & 0x00FFFFFFFFFFFE00
            if off:
                out.append(("l2", off, cs, None))
        with open(path, "rb") as f:
            f.seek(h.refcount_table_offset)
            table = f.read(h.refcount_table_clusters * cs)
        for i in range(0, len(table), 8):
            off = struct.unpack_from(">Q", table, i)[0] & ~0x1FF
            if off:
                out.append(("refblock", off, cs, None))
        return out
    finally:
        img.close()


def ext4_regions(path: str) -> tuple[list, dict]:
    """Superblock, descriptors, used inodes, directory, extent, xattr, bitmap and journal blocks."""
    fs = open_ext4(RawFile(path))
    try:
        bs, sb = fs.bs, fs.sb
        out = [("sb", 1024, 1024, "sb"), ("gd", (sb.first_data_block + 1) * bs, bs, "gd")]
        for g, gd in enumerate(fs.groups.descs):
            out += [("bitmap", gd.block_bitmap * bs, bs, None), ("bitmap", gd.inode_bitmap * bs, bs, None)]
        for ino in range(1, sb.inodes_count + 1):
            try:
                node = fs.itable.get(ino)
            except Exception:  # noqa: BLE001 - an unreadable seed inode is simply not a target
                continue
            if not node.mode:
                continue
            blk, off = fs.itable.location(ino)
            out.append(("inode", blk * bs + off, sb.inode_size, ("inode", ino)))
            if node.file_acl:
                out.append(("xattr", node.file_acl * bs, bs, ("xattr", node.file_acl)))
            if not fs.has_blocks(node):
                continue
            fmap = fs.map_of(node)
            for b in fmap.meta:
                out.append(("extent", b * bs, bs, ("extent", ino, node.generation)))
            if ino == 8:
                for _l, n, p, _u in fmap.ext[:1]:
                    out += [("journal", b * bs, bs, None) for b in range(p, p + min(n, 4))]
            elif node.mode & 0o170000 == 0o040000:
                for _l, n, p, _u in fmap.ext:
                    out += [("dir", b * bs, bs, ("dir", ino, node.generation)) for b in range(p, p + n)]
        ctx = {"seed": sb.csum_seed if fs.csum else None, "bs": bs, "desc_size": sb.desc_size,
               "groups": fs.groups.count, "isz": sb.inode_size, "first_data_block": sb.first_data_block}
        return out, ctx
    finally:
        fs.close()


def reseal(buf: bytearray, region: tuple, base: int, ctx: dict | None) -> None:
    """Recompute the checksum that covers ``region`` (absolute offsets in ``buf``)."""
    kind, off, length, how = region
    if how == "gpt_hdr" or how == "gpt_ent":
        if how == "gpt_ent":
            n, esz = struct.unpack_from("<II", buf, 512 + 80)
            if 0 < n * esz <= 1 << 20:
                struct.pack_into("<I", buf, 512 + 88, zlib.crc32(buf[1024 : 1024 + n * esz]))
        hsz = struct.unpack_from("<I", buf, 512 + 12)[0]
        if 92 <= hsz <= 512:
            struct.pack_into("<I", buf, 512 + 16, 0)
            struct.pack_into("<I", buf, 512 + 16, zlib.crc32(buf[512 : 512 + hsz]))
        return
    if ctx is None or ctx["seed"] is None:
        return
    seed, bs = ctx["seed"], ctx["bs"]
    if how == "sb":
        struct.pack_into("<I", buf, off + 0x3FC, csum.superblock_csum(bytes(buf[off : off + 1024])))
    elif how == "gd":
        ds = ctx["desc_size"]
        for g in range(min(ctx["groups"], bs // ds)):
            p = off + g * ds
            raw = bytearray(buf[p : p + ds])
            raw[0x1E:0x20] = b"\0\0"
            struct.pack_into("<H", buf, p + 0x1E, csum.group_desc_csum_crc32c(seed, g, bytes(raw)))
    elif how[0] == "inode":
        raw = bytearray(buf[off : off + length])
        csum.set_inode_csum(seed, how[1], raw)
        buf[off : off + length] = raw
    else:
        raw = bytearray(buf[off : off + length])
        try:
            if how[0] == "dir":
                csum.set_dirent_csum(seed, how[1], how[2], raw)
            elif how[0] == "extent":
                csum.set_extent_block_csum(seed, how[1], how[2], raw)
            elif how[0] == "xattr":
                csum.set_xattr_block_csum(seed, how[1], raw)
        except Exception:  # noqa: BLE001 - a block mutated past having a checksum tail stays as it is
            return
        buf[off : off + length] = raw
