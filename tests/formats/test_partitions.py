"""Partition tables read by Nuwa against the tables ``sfdisk`` wrote and reports (``--json``)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from helpers.hashing import file_sha256
from judges import run, tool
from nuwa.errors import CorruptImageError
from nuwa.formats import c_partitions as c
from nuwa.formats.blockdev import MemoryDevice, RawFile
from nuwa.formats.partitions import read_partitions

MiB = 1024 * 1024

GPT_SCRIPT = """label: gpt
label-id: 5C2D1E3A-7B4F-4E26-9A0D-0123456789AB
size=4MiB, type=21686148-6449-6E6F-744E-656564454649, name="BIOS boot"
size=8MiB, type=uefi, name="EFI system partition"
size=20MiB, type=linux, name="root fs", uuid=11111111-2222-4333-8444-555555555555
size=4MiB, type=swap, name="swap space"
type=E6D6D379-F507-44C2-A23C-238F2A3DF928, name="lvm \u00e9t\u00e9", attrs="LegacyBIOSBootable"
"""

MBR_SCRIPT = """label: dos
label-id: 0x12345678
size=8MiB, type=83, bootable
size=8MiB, type=82
type=5
size=10MiB, type=83
size=6MiB, type=8e
type=83
"""


def sfdisk_make(path: str, script: str, size: int = 64 * MiB) -> dict:
    """Write a partition table with sfdisk; return its ``--json`` view."""
    sfdisk = tool("sfdisk")
    with open(path, "wb") as f:
        f.truncate(size)
    run([sfdisk, "-q", path], input=script)
    return sfdisk_json(path)


def sfdisk_json(path: str) -> dict:
    return json.loads(run([tool("sfdisk"), "--json", path]).stdout)["partitiontable"]


@pytest.fixture(scope="session")
def gpt_image(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("gpt") / "gpt.img")
    return path, sfdisk_make(path, GPT_SCRIPT)


@pytest.fixture(scope="session")
def mbr_image(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("mbr") / "mbr.img")
    return path, sfdisk_make(path, MBR_SCRIPT)


def copy(src: str, tmp_path, name: str = "copy.img") -> str:
    dst = str(tmp_path / name)
    shutil.copyfile(src, dst)
    return dst


def assert_same_as_sfdisk(table, ref: dict) -> None:
    """Every partition sfdisk lists, and no other, with the same numbers, places and types."""
    got = {p.number: p for p in table.partitions}
    want_numbers = [int(p["node"][len(ref["device"]) :].lstrip("p")) for p in ref["partitions"]]
    assert sorted(got) == sorted(want_numbers)
    assert table.sector_size == ref["sectorsize"]
    for number, want in zip(want_numbers, ref["partitions"]):
        part = got[number]
        assert (part.start, part.size) == (want["start"], want["size"]), number
        if ref["label"] == "gpt":
            assert part.type == want["type"]
            assert part.uuid == want["uuid"]
            assert part.name == want.get("name", "")
            assert part.bootable == ("LegacyBIOSBootable" in want.get("attrs", ""))
        else:
            assert part.type == int(want["type"], 16)
            assert part.bootable == want.get("bootable", False)
        assert part.device.size == want["size"] * ref["sectorsize"]
        assert part.device.start == want["start"] * ref["sectorsize"]
    want_id = ref["id"].upper() if ref["label"] == "gpt" else ref["id"][2:].lower()
    assert table.disk_id == want_id


# --- tables as sfdisk writes them ------------------------------------------------------------


def test_gpt_matches_sfdisk(gpt_image):
    path, ref = gpt_image
    with RawFile(path) as dev:
        table = read_partitions(dev)
    assert table.scheme == "gpt" and table.warnings == []
    assert_same_as_sfdisk(table, ref)
    names = {p.number: p.type_name for p in table.partitions}
    assert names[1] == "BIOS boot" and names[4] == "Linux swap" and names[5] == "Linux LVM"


def test_mbr_primary_extended_logical_matches_sfdisk(mbr_image):
    path, ref = mbr_image
    with RawFile(path) as dev:
        table = read_partitions(dev)
    assert table.scheme == "mbr" and table.warnings == []
    assert_same_as_sfdisk(table, ref)
    kinds = {p.number: p.kind for p in table.partitions}
    assert kinds == {1: "primary", 2: "primary", 3: "extended", 5: "logical", 6: "logical", 7: "logical"}
    assert table.get(5).uuid == "12345678-05"  # the PARTUUID blkid reports for MBR


def test_partition_slices_read_the_right_bytes(gpt_image, tmp_path):
    """A marker written at each partition's first and last byte is read back through the slice."""
    path, ref = gpt_image
    img = copy(path, tmp_path)
    with open(img, "r+b") as f:
        for p in ref["partitions"]:
            f.seek(p["start"] * 512)
            f.write(b"first-%s" % p["node"][-1:].encode())
            f.seek((p["start"] + p["size"]) * 512 - 5)
            f.write(b"last" + p["node"][-1:].encode())
    with RawFile(img) as dev:
        for part in read_partitions(dev).partitions:
            assert part.device.pread(0, 7) == b"first-%d" % part.number
            assert part.device.pread(part.device.size - 5, 5) == b"last%d" % part.number


def test_gpt_4096_byte_sectors(tmp_path):
    """GPT on a 4Kn disk (sfdisk through a loop device with 4096-byte logical blocks)."""
    losetup = tool("losetup")
    img = str(tmp_path / "4k.img")
    with open(img, "wb") as f:
        f.truncate(64 * MiB)
    r = run([losetup, "-f", "--show", "-b", "4096", img], check=False)
    if r.returncode != 0:
        pytest.skip(f"no loop device available: {r.stderr.strip()}")
    loop = r.stdout.strip()
    try:
        run([tool("sfdisk"), "-q", loop], input='label: gpt\nsize=8MiB, name="a"\nname="b"\n', check=False)
        ref = sfdisk_json(loop)
    finally:
        run([losetup, "-d", loop], check=False)
    ref["device"] = loop
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert table.scheme == "gpt" and table.sector_size == 4096
    assert_same_as_sfdisk(table, ref)


def test_no_table():
    assert read_partitions(MemoryDevice(4 * MiB)).scheme is None


def test_resized_disk_keeps_reading_the_table(gpt_image, tmp_path):
    """After the disk grows, the backup header is no longer at the end; that is not damage."""
    path, ref = gpt_image
    img = copy(path, tmp_path)
    os.truncate(img, 96 * MiB)
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert table.warnings == []
    assert_same_as_sfdisk(table, ref)


def test_bare_fat_boot_sector_is_not_an_mbr(tmp_path):
    mkfs = shutil.which("mkfs.vfat") or shutil.which("mkfs.vfat", path="/usr/sbin:/sbin")
    if mkfs is None:
        pytest.skip("mkfs.vfat (dosfstools) is not installed")
    img = str(tmp_path / "fat.img")
    subprocess.run([mkfs, "-C", img, str(16 * 1024)], check=True, capture_output=True)
    with RawFile(img) as dev:
        assert read_partitions(dev).scheme is None


# --- damage ----------------------------------------------------------------------------------


def gpt_backup_lba(path: str) -> int:
    return os.path.getsize(path) // 512 - 1


def test_primary_header_crc_bad_uses_backup(gpt_image, tmp_path):
    path, ref = gpt_image
    img = copy(path, tmp_path)
    with open(img, "r+b") as f:
        f.seek(512 + 56)  # a byte of disk_guid, header_crc32 left stale
        b = f.read(1)
        f.seek(512 + 56)
        f.write(bytes([b[0] ^ 0xFF]))
    before = file_sha256(img)
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert file_sha256(img) == before
    assert_same_as_sfdisk(table, ref)  # the backup holds the same table
    assert table.header_lba == gpt_backup_lba(img)
    (warning,) = table.warnings
    assert "primary GPT header at LBA 1" in warning and "header CRC mismatch" in warning
    assert f"using the backup header at LBA {gpt_backup_lba(img)}" in warning


def test_primary_entry_array_crc_bad_uses_backup(gpt_image, tmp_path):
    path, ref = gpt_image
    img = copy(path, tmp_path)
    with open(img, "r+b") as f:
        f.seek(2 * 512 + 128 + 56)  # the name of entry 2
        f.write(b"X\0")
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert_same_as_sfdisk(table, ref)
    assert "entry array CRC mismatch" in table.warnings[0]


def test_primary_header_wiped_uses_backup(gpt_image, tmp_path):
    """Only the protective MBR says there is a GPT; the backup at the last LBA is found."""
    path, ref = gpt_image
    img = copy(path, tmp_path)
    with open(img, "r+b") as f:
        f.seek(512)
        f.write(bytes(512))
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert_same_as_sfdisk(table, ref)
    assert "no 'EFI PART' signature" in table.warnings[0]


def test_backup_damage_is_reported_but_primary_used(gpt_image, tmp_path):
    path, ref = gpt_image
    img = copy(path, tmp_path)
    with open(img, "r+b") as f:
        f.seek(gpt_backup_lba(img) * 512 + 40)
        f.write(b"\xff")
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert_same_as_sfdisk(table, ref)
    assert table.header_lba == 1
    assert f"backup GPT header at LBA {gpt_backup_lba(img)}" in table.warnings[0]


def test_both_gpt_headers_bad_is_corrupt(gpt_image, tmp_path):
    path, _ = gpt_image
    img = copy(path, tmp_path)
    last = gpt_backup_lba(img)
    with open(img, "r+b") as f:
        for lba in (1, last):
            f.seek(lba * 512 + 24)  # my_lba, header_crc32 left stale
            f.write(b"\x07")
    before = file_sha256(img)
    with RawFile(img) as dev, pytest.raises(CorruptImageError) as exc:
        read_partitions(dev)
    msg = str(exc.value)
    assert "primary GPT header at LBA 1" in msg and f"backup GPT header at LBA {last}" in msg
    assert "header CRC mismatch" in msg and "\n" not in msg
    assert file_sha256(img) == before


def test_ebr_chain_loop_is_cut(mbr_image, tmp_path):
    """An EBR whose link points back to itself: the chain ends there, with a warning."""
    path, ref = mbr_image
    img = copy(path, tmp_path)
    ext_start = next(p["start"] for p in ref["partitions"] if p["type"] == "5")
    second_ebr = None
    with open(img, "r+b") as f:
        f.seek(ext_start * 512 + 0x1BE + 16 + 8)
        second_ebr = ext_start + struct.unpack("<I", f.read(4))[0]
        # the second EBR's link now points back at the first EBR
        f.seek(second_ebr * 512 + 0x1BE + 16 + 8)
        f.write(struct.pack("<I", 0))
    with RawFile(img) as dev:
        table = read_partitions(dev)
    numbers = [p.number for p in table.partitions]
    assert numbers == [1, 2, 3, 5, 6]
    assert "loops back" in table.warnings[0] and f"LBA {ext_start}" in table.warnings[0]
    ref["partitions"] = [p for p in ref["partitions"] if not p["node"].endswith("7")]
    assert_same_as_sfdisk(table, ref)


def test_stale_gpt_behind_a_real_mbr_is_ignored(gpt_image, mbr_image, tmp_path):
    """An MBR written over a GPT disk without wiping LBA 1: the MBR counts, as in Linux."""
    img = copy(gpt_image[0], tmp_path)
    with open(mbr_image[0], "rb") as f:
        sector0 = f.read(512)
    with open(img, "r+b") as f:
        f.write(sector0)
    ref = dict(mbr_image[1])
    ref["partitions"] = [p for p in ref["partitions"] if p["type"] != "5" and int(p["node"][-1]) < 5]
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert table.scheme == "mbr"
    assert [(p.number, p.start, p.size) for p in table.partitions if p.kind == "primary"] == [
        (int(p["node"][-1]), p["start"], p["size"]) for p in ref["partitions"]
    ]
    assert "GPT header at LBA 1 ignored" in table.warnings[0]


def test_overlapping_mbr_partitions_are_reported(mbr_image, tmp_path):
    """Partition 2's start moved into partition 1: both are kept, the overlap is named."""
    path, ref = mbr_image
    img = copy(path, tmp_path)
    p1 = ref["partitions"][0]
    with open(img, "r+b") as f:
        f.seek(0x1BE + 16 + 8)  # record 2, start_sect
        f.write(struct.pack("<I", p1["start"] + 100))
    with RawFile(img) as dev:
        table = read_partitions(dev)
    assert table.get(2).start == p1["start"] + 100
    assert any("partitions 1 and 2 overlap" in w for w in table.warnings), table.warnings


def test_truncated_image_clips_last_partition(mbr_image, tmp_path):
    path, ref = mbr_image
    img = copy(path, tmp_path)
    os.truncate(img, 60 * MiB)
    with RawFile(img) as dev:
        table = read_partitions(dev)
    last = table.get(7)
    assert last.start + last.size == 60 * MiB // 512
    assert any("partition 7" in w and "truncated" in w for w in table.warnings)


@pytest.fixture(scope="session")
def small_gpt(tmp_path_factory):
    """A 4 MiB GPT disk (small, so that hypothesis can copy it for every example)."""
    path = str(tmp_path_factory.mktemp("sgpt") / "gpt.img")
    sfdisk_make(path, 'label: gpt\nsize=1MiB, name="a"\nsize=1MiB, name="b"\nname="c"\n', size=4 * MiB)
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def small_mbr(tmp_path_factory):
    """A 4 MiB MBR disk with three logical partitions; returns (bytes, sectors holding 55 AA)."""
    path = str(tmp_path_factory.mktemp("smbr") / "mbr.img")
    sfdisk_make(path, "label: dos\nsize=1MiB, type=83\ntype=5\nsize=512KiB\nsize=512KiB\nsize=256KiB\n",
                size=4 * MiB)
    with open(path, "rb") as f:
        data = f.read()
    tables = [i for i in range(len(data) // 512) if data[i * 512 + 510 : i * 512 + 512] == b"\x55\xaa"]
    assert len(tables) == 4  # the MBR and three EBRs, as sfdisk wrote them
    return data, tables


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 34 * 512 - 1), st.integers(1, 255)), min_size=1, max_size=8))
def test_random_damage_to_gpt_never_crashes(small_gpt, flips):
    """Bytes flipped in the primary or backup header and entries: a table or a CorruptImageError."""
    buf = bytearray(small_gpt)
    for at_end, off, mask in flips:
        buf[len(buf) - 34 * 512 + off if at_end else off] ^= mask
    try:
        table = read_partitions(MemoryDevice(buf, writable=False))
    except CorruptImageError as err:
        assert "GPT header" in str(err)
    else:
        for part in table.partitions:
            assert part.device.start + part.device.size <= len(buf)


@given(st.data())
def test_random_damage_to_mbr_and_ebrs_never_crashes(small_mbr, data):
    """Bytes flipped in the MBR's and EBRs' records: never an exception, never outside the disk."""
    image, tables = small_mbr
    buf = bytearray(image)
    for _ in range(data.draw(st.integers(1, 6))):
        sector = data.draw(st.sampled_from(tables))
        buf[sector * 512 + data.draw(st.integers(0x1BE, 0x1FF))] ^= data.draw(st.integers(1, 255))
    table = read_partitions(MemoryDevice(buf, writable=False))
    for part in table.partitions:
        assert part.device.start + part.device.size <= len(buf)


@pytest.fixture(scope="session")
def gpt_bytes(gpt_image):
    with open(gpt_image[0], "rb") as f:
        return f.read()


@pytest.fixture(scope="session")
def mbr_bytes(mbr_image):
    with open(mbr_image[0], "rb") as f:
        return f.read()


# --- the layout's round-trip law -----------------------------------------------------------


def test_structs_round_trip_on_real_bytes(gpt_bytes, mbr_bytes):
    """``build(parse(b)) == b`` on sectors cut from sfdisk's images."""
    hdr_raw = gpt_bytes[512 : 512 + c.GPT_HEADER_SIZE]
    hdr = c.gpt_header.parse(hdr_raw)
    assert c.gpt_header.build(hdr) == hdr_raw
    assert zlib.crc32(gpt_bytes[1024 : 1024 + 128 * 128]) == hdr.partition_entry_array_crc32
    for i in range(5):
        raw = gpt_bytes[1024 + 128 * i : 1024 + 128 * (i + 1)]
        assert c.gpt_entry.build(c.gpt_entry.parse(raw)) == raw
    for sector in (0, 34816, 57344, 71680):  # MBR and the three EBRs
        raw = mbr_bytes[sector * 512 : (sector + 1) * 512]
        assert c.mbr.build(c.mbr.parse(raw)) == raw


u8, u32, u64 = st.integers(0, 255), st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)


@given(
    st.fixed_dictionaries(
        {
            "partition_type_guid": st.binary(min_size=16, max_size=16),
            "unique_partition_guid": st.binary(min_size=16, max_size=16),
            "starting_lba": u64,
            "ending_lba": u64,
            "attributes": u64,
            "partition_name": st.binary(min_size=72, max_size=72),
        }
    )
)
def test_gpt_entry_round_trip(fields):
    parsed = c.gpt_entry.parse(c.gpt_entry.build(fields))
    assert {k: parsed[k] for k in fields} == fields


@given(st.lists(st.fixed_dictionaries({k: u8 for k in ("boot_ind", "head", "sector", "cyl", "sys_ind", "end_head", "end_sector", "end_cyl")} | {"start_sect": u32, "nr_sects": u32}), min_size=4, max_size=4), u32)
def test_mbr_round_trip(records, disk_sig):
    fields = {"boot_code": bytes(440), "unique_mbr_signature": disk_sig, "unknown": 0, "partition_record": records, "signature": c.MBR_SIGNATURE}
    raw = c.mbr.build(fields)
    assert len(raw) == 512
    parsed = c.mbr.parse(raw)
    assert [{k: r[k] for k in records[0]} for r in parsed.partition_record] == records
    assert c.mbr.build(parsed) == raw
