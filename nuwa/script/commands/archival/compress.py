"""``gzip`` (1.12), ``xz`` (xz-utils 5.4) and ``zstd`` (1.5.4) as initramfs-tools calls them.

mkinitramfs compresses its cpio archive with one of (``mkinitramfs``, the ``case
"${compress}"`` blocks)::

    gzip [-n] [-LEVEL] -c FILE
    xz [-LEVEL] --check=crc32 [--threads=0] -c FILE
    zstd -q -LEVEL [-T0] -c FILE
    lz4 -LEVEL -l -c FILE

and decompresses modules in place (``xz -d KO``, ``zstd -q -d --rm KO``). The models do the
same with Python's ``zlib``, ``lzma`` and the ``zstandard`` library: the *content* of the
stream is what the real program would write and it decompresses to the same bytes, with the
container fields the real program sets (gzip's name, time, XFL and OS bytes; xz's check;
zstd's content size and checksum). The compressed bytes themselves are not claimed to be
identical to the real encoders' (different match finders), which is why the initramfs judge
compares archives unpacked. Decompression is exact.

In place (without ``-c``): ``FILE`` becomes ``FILE.gz``/``.xz``/``.zst`` (or back with
``-d``) with the source's mode, owner and times, as the programs copy them; gzip and xz
remove the source unless ``-k``, zstd only with ``--rm``.

Deferred: ``lz4`` (no lz4 library among Nuwa's dependencies), recursive and list modes,
``--format`` other than the default, filter chains, and options not listed in the specs below.
"""

from __future__ import annotations

import lzma
import posixpath
import struct
import zlib

import zstandard

from nuwa.fs.content import pieces
from nuwa.host import usable_cpus
from nuwa.script.commands import _args
from nuwa.script.context import Defer, Invocation, strerror

#: the job size of zstd's worker threads (-T): memory per worker follows it
ZSTD_JOB_SIZE = 2 << 20
#: how much of the data before a job its worker indexes again (the window >> (9 - log)):
#: the library's default for -9 (lazy2, 7) is 1 MiB, half of every 2 MiB job; 6 (512 KiB)
#: takes 10-15% less CPU on a 51 MB initramfs (0.85-1.05 -> 0.74-0.90 s over 6 runs) at the
#: same memory, and the output is the size the real zstd -9 -T0 writes (13.31 MB, measured;
#: 16 MiB jobs with the default overlap, the CLI's, hold 56 MB more)
ZSTD_OVERLAP_LOG = 6

_GZIP = _args.spec("cdfknNq123456789", {"stdout": "c", "to-stdout": "c", "decompress": "d", "uncompress": "d",
                                        "force": "f", "keep": "k", "no-name": "n", "name": "N", "quiet": "q",
                                        "fast": "1", "best": "9"})
_XZ = _args.spec("cdzfkqeT:0123456789", {"stdout": "c", "to-stdout": "c", "decompress": "d", "uncompress": "d",
                                         "compress": "z", "force": "f", "keep": "k", "quiet": "q", "extreme": "e",
                                         "threads": "T", "check": ("check", _args.REQ)})
_ZSTD = _args.spec("cdzfkqT:0123456789", {"stdout": "c", "decompress": "d", "uncompress": "d", "compress": "z",
                                          "force": "f", "keep": "k", "quiet": "q", "rm": "rm",
                                          "threads": ("T", _args.REQ), "no-progress": "no-progress"})


#: the first bytes of the formats gzip -d reads: gzip, compress (.Z), pack, LZH, zip
_GZIP_FORMATS = {b"\x1f\x8b", b"\x1f\x9d", b"\x1f\x1e", b"\x1f\xa0", b"PK"}


class _Job:
    """One compressor invocation: its options and the files it works on."""

    def __init__(self, inv: Invocation, spec, suffix: str):
        try:
            opts, self.files = _args.parse(inv, spec)
        except _args.UsageError as e:
            raise Defer(f"{inv.name}: {e.text} (usage errors are not modelled)") from None
        self.inv, self.suffix = inv, suffix
        self.flags = {k for k, _ in opts}
        self.values = {k: v for k, v in opts}
        digits = "".join(k for k, _ in opts if k.isdigit())
        # "-19" is two clustered options "-1" "-9" to getopt but one level to the programs,
        # which collect consecutive digits themselves
        self.level = int(digits) if digits else None
        self.decompress = "d" in self.flags
        self.stdout = "c" in self.flags or not self.files or self.files == ["-"]

    def run(self, compress, decompress, keep_default: bool) -> int:
        """Apply ``compress`` (an iterable of pieces -> bytes; ``name``, ``stat`` for headers)
        or ``decompress`` (bytes -> bytes). A file to compress is read 1 MiB at a time, never
        whole (an initramfs archive is tens of MB); standard input is one piece."""
        inv = self.inv
        status = 0
        for name in self.files or ["-"]:
            handle = None
            if name == "-":
                data, st, base = inv.stdin, None, ""
                source = (data,)
            else:
                path = inv.path(name)
                try:
                    st = inv.fs.stat(path)
                    if not st.is_reg:
                        raise Defer(f"{inv.name}: {name} is not a regular file")
                    if self.decompress:
                        data = inv.fs.read_bytes(path)
                    else:
                        handle = inv.fs.open_handle(path)
                        source = (chunk for _off, chunk in pieces(handle, st.st_size))
                except OSError as e:
                    inv.err(f"{inv.name}: {name}: {strerror(e)}\n")
                    status = 1
                    continue
                base = posixpath.basename(name)
            try:
                out = decompress(data) if self.decompress else compress(source, base, st)
            except (OSError, lzma.LZMAError, zstandard.ZstdError, zlib.error, EOFError) as e:
                raise Defer(f"{inv.name}: {name}: cannot decompress ({e})") from None
            finally:
                if handle is not None:
                    handle.close()
            if self.stdout:
                if isinstance(out, bytearray):
                    inv.out_buffer(out)  # taken over, not copied (a compressed initramfs is ~13 MB)
                else:
                    inv.out(out)
                continue
            self._in_place(name, out, st, keep_default)
        return status

    def _in_place(self, name: str, out: bytes, st, keep_default: bool) -> None:
        inv = self.inv
        if self.decompress:
            if not name.endswith(self.suffix):
                raise Defer(f"{inv.name}: {name}: an unknown suffix is not modelled")
            target = name[: -len(self.suffix)]
        else:
            target = name + self.suffix
        tpath, spath = inv.path(target), inv.path(name)
        if inv.fs.lexists(tpath) and "f" not in self.flags:
            raise Defer(f"{inv.name}: {target} exists (the real program asks or refuses)")
        inv.fs.write_bytes(tpath, out, st.st_mode & 0o7777)
        inv.fs.chown(tpath, st.st_uid, st.st_gid)
        inv.fs.chmod(tpath, st.st_mode & 0o7777)
        inv.fs.utime(tpath, st.st_atime_ns, st.st_mtime_ns)
        remove = ("rm" in self.flags) if not keep_default else ("k" not in self.flags)
        if remove:
            inv.fs.unlink(spath)


def _streamed(compressor, source) -> bytearray:
    """Every piece of ``source`` through a streaming ``compressor`` (``compress``, ``flush``):
    the same stream as compressing the whole at once, without holding the whole."""
    out = bytearray()
    for piece in source:
        out += compressor.compress(piece)
    out += compressor.flush()
    return out


def gzip(inv: Invocation) -> int:
    """gzip 1.12: ``-c``, ``-d``, ``-n``/``-N``, ``-1``..``-9``, ``-k``, ``-f``, ``-q``."""
    job = _Job(inv, _GZIP, ".gz")
    level = job.level if job.level is not None else 6
    if not 1 <= level <= 9:
        raise Defer(f"gzip: level {level} is not modelled")

    def compress(source, base: str, st) -> bytes:
        # RFC 1952 member as gzip's zip.c writes it: FNAME and MTIME unless -n (and never
        # for standard input), XFL 2 for -9 and 4 for -1, OS 3 (Unix)
        named = st is not None and "n" not in job.flags
        flg = 0x08 if named else 0
        mtime = st.st_mtime_ns // 10**9 if named else 0
        xfl = 2 if level == 9 else 4 if level == 1 else 0
        head = b"\x1f\x8b\x08" + bytes([flg]) + struct.pack("<I", mtime & 0xFFFFFFFF) + bytes([xfl, 3])
        if named:
            head += base.encode("utf-8", "surrogateescape") + b"\0"
        crc, size = 0, 0

        def counted():
            nonlocal crc, size
            for piece in source:
                crc, size = zlib.crc32(piece, crc), size + len(piece)
                yield piece

        body = _streamed(zlib.compressobj(level, zlib.DEFLATED, -15, 8), counted())
        return head + body + struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF)

    def decompress(data: bytes) -> bytes:
        if "f" in job.flags and job.stdout and data[:2] not in _GZIP_FORMATS:
            # gzip -dcf: input in no format gzip knows is copied unchanged (zcat -f, zgrep, zless)
            return data
        if data[:2] in _GZIP_FORMATS and data[:2] != b"\x1f\x8b":
            raise Defer("gzip: compress/pack/LZH/zip input is not modelled")
        out = bytearray()
        while data:  # concatenated members decompress one after another, as gzip does
            d = zlib.decompressobj(16 + 15)
            out += d.decompress(data) + d.flush()
            if not d.eof:
                raise EOFError("unexpected end of file")
            data = d.unused_data
        return bytes(out)

    return job.run(compress, decompress, keep_default=True)


def xz(inv: Invocation) -> int:
    """xz 5.4: ``-c``, ``-d``/``-z``, ``-0``..``-9``, ``-e``, ``--check=``, ``-T``, ``-k``, ``-f``, ``-q``."""
    job = _Job(inv, _XZ, ".xz")
    level = job.level if job.level is not None else 6
    if not 0 <= level <= 9:
        raise Defer(f"xz: level {level} is not modelled")
    checks = {"crc32": lzma.CHECK_CRC32, "crc64": lzma.CHECK_CRC64, "sha256": lzma.CHECK_SHA256,
              "none": lzma.CHECK_NONE}
    check_name = job.values.get("check", "crc64")
    if check_name not in checks:
        raise Defer(f"xz: --check={check_name} is not modelled")
    preset = level | (lzma.PRESET_EXTREME if "e" in job.flags else 0)

    def compress(source, _base: str, _st) -> bytes:
        # --threads only splits the stream into blocks; one block holds the same content
        return _streamed(lzma.LZMACompressor(format=lzma.FORMAT_XZ, check=checks[check_name], preset=preset), source)

    def decompress(data: bytes) -> bytes:
        return lzma.decompress(data, format=lzma.FORMAT_XZ)

    return job.run(compress, decompress, keep_default=True)


def zstd(inv: Invocation) -> int:
    """zstd 1.5.4: ``-c``, ``-d``, ``-1``..``-19``, ``-T``, ``-q``, ``--rm``, ``-k``, ``-f``."""
    job = _Job(inv, _ZSTD, ".zst")
    level = job.level if job.level is not None else 3
    if not 1 <= level <= 19:
        raise Defer(f"zstd: level {level} is not modelled")

    t = job.values.get("T")
    if t is not None and not t.isdigit():
        raise Defer(f"zstd: -T{t} is not modelled")
    # -T0: as many workers as cores, -TN: N (zstd's -T1 and the library's 0 are one thread);
    # the frames hold the same content whatever the split
    threads = -1 if t == "0" else (int(t) if t and int(t) > 1 else 0)

    def compress(source, _base: str, st) -> bytes:
        # the CLI writes a checksum by default and the content size when it knows it (a
        # file, not a pipe); streamed, so no buffer of the input's compressed bound is made
        if threads:
            # workers take jobs of ZSTD_JOB_SIZE (the library's default for -9 is 16 MiB):
            # compressing a 51 MB initramfs on 2 workers then holds 56 MB instead of 103 MB,
            # as fast, the output 0.25% larger (measured)
            params = zstandard.ZstdCompressionParameters.from_level(
                level, source_size=st.st_size if st is not None else 0,
                threads=usable_cpus() if threads < 0 else threads, job_size=ZSTD_JOB_SIZE,
                overlap_log=ZSTD_OVERLAP_LOG, write_checksum=1, write_content_size=int(st is not None))
            c = zstandard.ZstdCompressor(compression_params=params)
        else:
            c = zstandard.ZstdCompressor(level=level, write_checksum=True, write_content_size=st is not None)
        return _streamed(c.compressobj(size=st.st_size if st is not None else -1), source)

    def decompress(data: bytes) -> bytes:
        out = bytearray()
        d = zstandard.ZstdDecompressor()
        with d.stream_reader(data, read_across_frames=True) as r:
            while True:
                chunk = r.read(1 << 20)
                if not chunk:
                    break
                out += chunk
        return bytes(out)

    return job.run(compress, decompress, keep_default=False)


def lz4(inv: Invocation) -> int:
    """lz4: deferred, saying why (the initramfs is then built at first boot)."""
    raise Defer("lz4: no lz4 library among Nuwa's dependencies (LZ4 legacy frames are not written offline)")
