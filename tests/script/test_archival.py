"""cpio, gzip, xz and zstd models against the real programs.

cpio: the real GNU cpio of the kernel tree runs in a chroot of a hard-linked copy, on a
scratch directory holding every file type, hard links inside and outside the list, odd
modes and owners; the archives must be byte-identical (with ``--reproducible``, and also
without: the model reads the same inode and device numbers through ``HostDirFS``).

Compressors: the model's streams are decompressed by the host's real programs and the real
programs' streams by the models, to the same bytes; the container fields the real program
sets (gzip's flags, time, name, XFL and OS; xz's check; zstd's checksum and content-size
flags) are compared; the in-place forms keep mode, owner and times like the real ones.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import zstandard

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation

MODELS = default_models()
PATH = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


def _model(fs, argv, stdin=b"", cwd="/"):
    inv = Invocation(list(argv), fs, cwd=cwd, env=dict(PATH), stdin=stdin, models=MODELS)
    st = MODELS[argv[0]](inv)
    return st, bytes(inv.stdout), bytes(inv.stderr)


# -- cpio ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chroot_tree(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    root = link_tree(kernel_tree(), str(tmp_path_factory.mktemp("cpio") / "root"))
    s = os.path.join(root, "scratch")
    os.makedirs(os.path.join(s, "d/sub"))
    with open(os.path.join(s, "d/a"), "wb") as f:
        f.write(b"hello\n")
    os.link(os.path.join(s, "d/a"), os.path.join(s, "d/b"))
    os.link(os.path.join(s, "d/a"), os.path.join(s, "d/b2"))
    with open(os.path.join(s, "d/c"), "wb") as f:
        f.write(bytes(range(256)) * 40 + b"odd")
    os.link(os.path.join(s, "d/c"), os.path.join(root, "outside-link"))  # a link not in the list
    os.symlink("a", os.path.join(s, "d/l"))
    os.symlink("/no/such/target", os.path.join(s, "d/dangling"))
    os.mkfifo(os.path.join(s, "d/fifo"))
    os.mknod(os.path.join(s, "d/null"), 0o20666, os.makedev(1, 3))
    with open(os.path.join(s, "d/sub/setuid"), "wb") as f:
        f.write(b"#!/bin/sh\n")
    os.chmod(os.path.join(s, "d/sub/setuid"), 0o4751)
    os.chown(os.path.join(s, "d/sub/setuid"), 12, 34)
    open(os.path.join(s, "d/empty"), "wb").close()
    for dirpath, dirs, files in os.walk(s):
        for n in dirs + files:
            os.utime(os.path.join(dirpath, n), (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return root


def _names(root: str) -> bytes:
    """``find . | LC_ALL=C sort`` of the scratch directory, as mkinitramfs feeds cpio."""
    out = [b"."]
    for dirpath, dirs, files in os.walk(os.path.join(root, "scratch")):
        for n in dirs + files:
            out.append(b"./" + os.path.relpath(os.path.join(dirpath, n), os.path.join(root, "scratch")).encode())
    return b"\n".join(sorted(out)) + b"\n"


def _real_cpio(root: str, args: list[str], stdin: bytes):
    r = subprocess.run(["chroot", root, "sh", "-c", 'cd /scratch && exec cpio "$@"', "cpio", *args],
                       input=stdin, capture_output=True, env=PATH)
    return r.returncode, r.stdout, r.stderr


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.slow
@pytest.mark.parametrize("args", [
    ["--quiet", "-R", "0:0", "--reproducible", "-o", "-H", "newc"],
    ["--quiet", "--reproducible", "-o", "-H", "newc"],
    ["-o", "-H", "newc", "--reproducible"],
    ["--quiet", "-o", "-H", "newc"],
    ["-R", "root:root", "--create", "--format=newc", "--renumber-inodes"],
])
def test_cpio_archives_are_byte_identical(chroot_tree, args):
    names = _names(chroot_tree)
    want = _real_cpio(chroot_tree, args, names)
    assert want[0] == 0, want[2]
    assert _model(HostDirFS(chroot_tree), ["cpio", *args], names, cwd="/scratch") == want


@pytest.mark.judge
@pytest.mark.root
@pytest.mark.slow
def test_cpio_null_separated_names_links_in_any_order_and_a_missing_name(chroot_tree):
    names = b"\0".join([b"d/b2", b"d/a", b"d/missing", b"d/c", b"d/b", b"d"]) + b"\0"
    args = ["-0", "--reproducible", "-o", "-H", "newc"]
    want = _real_cpio(chroot_tree, args, names)
    assert want[0] == 2 and b"Cannot stat" in want[2]
    assert _model(HostDirFS(chroot_tree), ["cpio", *args], names, cwd="/scratch") == want


def test_cpio_modes_other_than_copy_out_newc_are_deferred():
    fs = MemoryFS()
    for argv in (["cpio", "-i"], ["cpio", "-o"], ["cpio", "-o", "-H", "odc"], ["cpio", "-o", "-H", "newc", "-v"]):
        with pytest.raises(Defer):
            _model(fs, argv, b".\n")


# -- compressors --------------------------------------------------------------------------------

DATA = b"".join(b"line %d of a cpio archive\n" % i for i in range(20000)) + os.urandom(5000)


def _host(prog: str, args: list[str], data: bytes) -> bytes:
    exe = shutil.which(prog)
    if exe is None:
        pytest.skip(f"{prog} is not installed on the host")
    return subprocess.run([exe, *args], input=data, capture_output=True, check=True).stdout


def _file_fs(data: bytes = DATA):
    fs = MemoryFS()
    fs.makedirs("/var/tmp")
    fs.write_bytes("/var/tmp/main.cpio", data, 0o600)
    fs.chown("/var/tmp/main.cpio", 7, 8)
    fs.utime("/var/tmp/main.cpio", 1_600_000_000 * 10**9, 1_650_000_000 * 10**9)
    return fs


@pytest.mark.judge
@pytest.mark.parametrize("argv", [["gzip", "-c"], ["gzip", "-n", "-c"], ["gzip", "-n", "-9", "-c"],
                                  ["gzip", "-1", "-c"]])
def test_gzip_streams_decompress_with_the_real_gzip_and_carry_its_header(argv, tmp_path):
    st, out, err = _model(_file_fs(), argv + ["/var/tmp/main.cpio"])
    assert (st, err) == (0, b"")
    assert _host("gzip", ["-dc"], out) == DATA
    src = tmp_path / "main.cpio"
    src.write_bytes(DATA)
    os.utime(src, (1_600_000_000, 1_650_000_000))
    real = subprocess.run([shutil.which("gzip"), *argv[1:], str(src)], capture_output=True, check=True).stdout
    # FLG, MTIME, XFL, OS, then the name (when stored)
    assert out[:10] == real[:10]
    def name(stream: bytes) -> bytes:
        return stream[10:stream.index(b"\0", 10) + 1] if stream[3] & 8 else b""

    assert name(out) == name(real)
    st, back, _ = _model(MemoryFS(), ["gzip", "-d", "-c"], real)
    assert (st, back) == (0, DATA)


@pytest.mark.judge
@pytest.mark.parametrize("data", [b"plain text\n", b"", b"\x1f", b"x" * 70000])
def test_gzip_force_copies_what_is_not_compressed_like_the_real_gzip(data):
    """``gzip -dcf`` (zcat -f, zgrep) copies input in no format gzip reads unchanged; a gzip
    stream still decompresses."""
    real = subprocess.run([shutil.which("gzip"), "-dcf"], input=data, capture_output=True)
    assert _model(MemoryFS(), ["gzip", "-dcf"], data) == (real.returncode, real.stdout, real.stderr)
    packed = _host("gzip", ["-c"], data)
    assert _model(MemoryFS(), ["gzip", "-dcf"], packed) == (0, data, b"")


@pytest.mark.judge
@pytest.mark.parametrize("argv", [["xz", "--check=crc32", "--threads=0", "-c"], ["xz", "-9", "--check=crc32", "-c"],
                                  ["xz", "-c"]])
def test_xz_streams_decompress_with_the_real_xz_with_the_same_check(argv):
    st, out, err = _model(_file_fs(), argv + ["/var/tmp/main.cpio"])
    assert (st, err) == (0, b"")
    assert _host("xz", ["-dc"], out) == DATA
    real = _host("xz", argv[1:], DATA)
    assert out[:12] == real[:12]  # stream header: magic, flags (the check), CRC32
    st, back, _ = _model(MemoryFS(), ["xz", "-d", "-c"], real)
    assert (st, back) == (0, DATA)


@pytest.mark.judge
@pytest.mark.parametrize("argv", [["zstd", "-q", "-9", "-T0", "-c"], ["zstd", "-q", "-19", "-c"], ["zstd", "-c"]])
def test_zstd_frames_decompress_with_the_real_zstd_with_the_same_flags(argv, tmp_path):
    st, out, err = _model(_file_fs(), argv + ["/var/tmp/main.cpio"])
    assert (st, err) == (0, b"")
    assert _host("zstd", ["-dc"], out) == DATA
    src = tmp_path / "main.cpio"
    src.write_bytes(DATA)
    real = subprocess.run([shutil.which("zstd"), *argv[1:], str(src)], capture_output=True, check=True).stdout
    # frame header descriptor: content-size field size, checksum flag, single segment
    assert out[:4] == real[:4] and out[4] & 0xE4 == real[4] & 0xE4
    st, back, _ = _model(MemoryFS(), ["zstd", "-d", "-c"], real)
    assert (st, back) == (0, DATA)


@pytest.mark.judge
def test_zstd_reads_a_large_file_in_pieces_into_one_frame(tmp_path):
    """A file of several 1 MiB pieces (an initramfs archive is tens of MB) is compressed
    piece by piece into one frame that states the whole size, as the real zstd writes it."""
    data = DATA * 12 + os.urandom(70000)  # about 5.5 MB: six pieces, the last one short
    st, out, err = _model(_file_fs(data), ["zstd", "-q", "-9", "-T0", "-c", "/var/tmp/main.cpio"])
    assert (st, err) == (0, b"")
    assert _host("zstd", ["-dc"], out) == data
    params = zstandard.get_frame_parameters(out)
    assert params.content_size == len(data) and params.has_checksum
    assert zstandard.ZstdDecompressor().decompress(out) == data


@pytest.mark.judge
def test_zstd_with_workers_compresses_a_pipe_in_several_jobs():
    """``cpio ... | zstd -q -9 -T0`` as mkinitramfs runs it: standard input of unknown size,
    compressed by worker threads in jobs of ZSTD_JOB_SIZE (several here); the real zstd
    decompresses it, and the frame states no content size (the CLI does not know it)."""
    from nuwa.script.commands.archival.compress import ZSTD_JOB_SIZE

    data = (DATA * 30)[: 3 * ZSTD_JOB_SIZE + 12345] + os.urandom(50000)
    st, out, err = _model(MemoryFS(), ["zstd", "-q", "-9", "-T0"], data)
    assert (st, err) == (0, b"")
    assert _host("zstd", ["-dc"], out) == data
    params = zstandard.get_frame_parameters(out)
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN and params.has_checksum


@pytest.mark.judge
def test_modules_decompress_in_place_keeping_mode_owner_and_times():
    for prog, argv, suffix, keep in (("xz", ["xz", "-d"], ".xz", False),
                                     ("zstd", ["zstd", "-q", "-d", "--rm"], ".zst", False),
                                     ("zstd", ["zstd", "-q", "-d"], ".zst", True)):
        packed = _host(prog, ["-c"], DATA)
        fs = _file_fs(packed)
        fs.rename("/var/tmp/main.cpio", "/var/tmp/mod.ko" + suffix)
        st, out, err = _model(fs, argv + ["/var/tmp/mod.ko" + suffix])
        assert (st, out, err) == (0, b"", b"")
        assert fs.read_bytes("/var/tmp/mod.ko") == DATA
        s = fs.stat("/var/tmp/mod.ko")
        assert (s.st_mode & 0o7777, s.st_uid, s.st_gid, s.st_mtime_ns) == (0o600, 7, 8, 1_650_000_000 * 10**9)
        assert fs.lexists("/var/tmp/mod.ko" + suffix) == keep


def test_lz4_and_unknown_options_are_deferred_with_a_reason():
    with pytest.raises(Defer, match="lz4"):
        _model(_file_fs(), ["lz4", "-9", "-l", "-c", "/var/tmp/main.cpio"])
    with pytest.raises(Defer):
        _model(_file_fs(), ["zstd", "--long=27", "-c", "/var/tmp/main.cpio"])


def test_a_model_hands_over_its_output_buffer_once():
    """cpio's archive becomes standard output without a copy when nothing was written before,
    and is appended after what was (Invocation.out_buffer)."""
    inv = Invocation(["cpio"], MemoryFS())
    buf = bytearray(b"archive")
    inv.out_buffer(buf)
    assert inv.stdout is buf
    inv2 = Invocation(["cpio"], MemoryFS())
    inv2.out("first ")
    inv2.out_buffer(bytearray(b"archive"))
    assert bytes(inv2.stdout) == b"first archive"

