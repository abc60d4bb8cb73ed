"""Reading partition tables: MBR (primary, extended, logical) and GPT.

:func:`read_partitions` turns a block device into a :class:`PartitionTable` whose partitions
are :class:`~nuwa.formats.blockdev.SliceDevice` windows of the device. The decoders
(``decode_*``) are pure functions of bytes; only :func:`read_partitions` and its helpers
``pread`` the device.

What is checked, and what happens when a check fails:

- GPT: signature, revision-independent header size, header CRC32, ``my_lba``, usable-range
  sanity, and the CRC32 of the entry array (UEFI 2.10 section 5.3.2, "GPT Header" validity
  rules). If the primary header or its entries fail, the backup header (at the primary's
  ``alternate_lba``, else at the last LBA) is used and a warning says so; if both fail, a
  :class:`~nuwa.errors.CorruptImageError` names each header, its LBA and what was wrong.
- MBR: the 55 AA signature and a valid boot indicator in every record (as the kernel's
  ``msdos_partition`` does, so that a bare FAT boot sector is not mistaken for a table);
  the EBR chain is followed with protection against loops and chains leaving the extended
  partition.
- A partition reaching past the end of the device is cut at the end, with a warning (the
  kernel does the same for MBR; a truncated image file can still be read up to its end).
"""

from __future__ import annotations

import uuid
import zlib
from dataclasses import dataclass, field

from construct import ConstError, StreamError

from nuwa.errors import CorruptImageError
from nuwa.formats import c_partitions as c
from nuwa.formats.blockdev import BlockDevice, SliceDevice

#: more logical partitions than this (the kernel's DISK_MAX_PARTS is 256) means a bogus chain
MAX_LOGICAL = 256
#: an entry array larger than this is refused (128 entries of 128 bytes is 16 KiB)
MAX_ENTRY_ARRAY_BYTES = 4 * 1024 * 1024


@dataclass
class Partition:
    """One partition: where it lies (in sectors, last sector inclusive) and what it is."""

    number: int  # 1-based; MBR logical partitions are 5, 6, ...
    start: int  # first sector
    size: int  # number of sectors
    sector_size: int
    type: int | str  # MBR type byte, or GPT type GUID (upper-case text)
    type_name: str  # friendly name of the type ("Linux filesystem", "Linux swap / Solaris")
    name: str = ""  # GPT partition name (MBR partitions have none)
    uuid: str = ""  # GPT unique partition GUID; MBR: "<disk signature>-<nn>" like blkid's PARTUUID
    bootable: bool = False  # MBR boot indicator 0x80, GPT "legacy BIOS bootable" attribute
    attributes: int = 0  # GPT attribute bits
    kind: str = "primary"  # "primary", "extended" or "logical" (MBR); "gpt"
    device: BlockDevice | None = field(default=None, repr=False, compare=False)

    @property
    def end(self) -> int:
        """The last sector of the partition (inclusive), as sfdisk and UEFI count."""
        return self.start + self.size - 1

    @property
    def offset(self) -> int:
        """Byte offset of the partition on the device."""
        return self.start * self.sector_size

    @property
    def length(self) -> int:
        """Size of the partition in bytes."""
        return self.size * self.sector_size


@dataclass
class PartitionTable:
    """The result of :func:`read_partitions`."""

    scheme: str | None  # "gpt", "mbr", or None (no partition table)
    sector_size: int = c.SECTOR_SIZE
    partitions: list[Partition] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    disk_id: str = ""  # GPT disk GUID, or the MBR disk signature as 8 hex digits
    header_lba: int | None = None  # GPT: the LBA of the header that was used

    def get(self, number: int) -> Partition | None:
        """The partition numbered ``number``, or None."""
        for part in self.partitions:
            if part.number == number:
                return part
        return None


# --- pure decoding -------------------------------------------------------------------------


def guid_text(raw: bytes) -> str:
    """An EFI GUID (mixed-endian bytes) as upper-case text, as sfdisk prints it."""
    return str(uuid.UUID(bytes_le=bytes(raw))).upper()


def gpt_name_text(raw: bytes) -> str:
    """A GPT partition name: UTF-16LE, up to the first NUL code unit."""
    text = bytes(raw).decode("utf-16-le", errors="replace")
    return text.split("\0", 1)[0]


def gpt_header_crc(raw: bytes, header_size: int) -> int:
    """CRC32 of the first ``header_size`` bytes with ``header_crc32`` zeroed (UEFI 5.3.2)."""
    buf = bytearray(raw[:header_size])
    buf[c.GPT_HEADER_CRC_OFFSET : c.GPT_HEADER_CRC_OFFSET + 4] = bytes(4)
    return zlib.crc32(buf) & 0xFFFFFFFF


def check_gpt_header(raw: bytes, lba: int, sector_size: int, total_sectors: int):
    """Decode and validate the GPT header in sector ``raw`` read from ``lba``.

    Returns ``(header, None)`` if valid, else ``(header_or_None, reason)``. The entry array
    is checked separately (:func:`check_gpt_entries`) because it needs another read.
    """
    if raw[:8] != c.GPT_SIGNATURE:
        return None, f"no 'EFI PART' signature (found {raw[:8].hex()})"
    try:
        hdr = c.gpt_header.parse(raw)
    except (ConstError, StreamError) as err:  # pragma: no cover - signature checked above
        return None, f"unreadable header ({err})"
    if not c.GPT_HEADER_SIZE <= hdr.header_size <= sector_size:
        return hdr, f"field header_size is {hdr.header_size} (must be {c.GPT_HEADER_SIZE}..{sector_size})"
    crc = gpt_header_crc(raw, hdr.header_size)
    if crc != hdr.header_crc32:
        return hdr, f"header CRC mismatch (field header_crc32 0x{hdr.header_crc32:08x}, computed 0x{crc:08x})"
    if hdr.my_lba != lba:
        return hdr, f"field my_lba is {hdr.my_lba}, but the header was read from LBA {lba}"
    if not (hdr.first_usable_lba <= hdr.last_usable_lba):
        return hdr, f"usable range {hdr.first_usable_lba}..{hdr.last_usable_lba} is empty"
    esz = hdr.sizeof_partition_entry
    if esz < c.GPT_ENTRY_SIZE or esz % c.GPT_ENTRY_SIZE or (esz // c.GPT_ENTRY_SIZE) & (esz // c.GPT_ENTRY_SIZE - 1):
        return hdr, f"field sizeof_partition_entry is {esz} (must be 128 * 2^n)"
    array_bytes = hdr.num_partition_entries * esz
    if array_bytes > MAX_ENTRY_ARRAY_BYTES:
        return hdr, f"entry array of {hdr.num_partition_entries} x {esz} bytes is implausibly large"
    array_sectors = -(-array_bytes // sector_size)
    if hdr.partition_entry_lba < 1 or hdr.partition_entry_lba + array_sectors > total_sectors:
        return hdr, (
            f"field partition_entry_lba {hdr.partition_entry_lba} (+{array_sectors} sectors) "
            f"lies outside the device ({total_sectors} sectors)"
        )
    return hdr, None


def check_gpt_entries(hdr, array: bytes) -> str | None:
    """None if the entry array's CRC32 matches the header, else the reason."""
    crc = zlib.crc32(array) & 0xFFFFFFFF
    if crc != hdr.partition_entry_array_crc32:
        return (
            f"entry array CRC mismatch (field partition_entry_array_crc32 "
            f"0x{hdr.partition_entry_array_crc32:08x}, computed 0x{crc:08x})"
        )
    return None


def decode_gpt_entries(hdr, array: bytes, sector_size: int) -> tuple[list[Partition], list[str]]:
    """The used entries of a CRC-checked entry array, and warnings about odd entries."""
    parts: list[Partition] = []
    warnings: list[str] = []
    esz = hdr.sizeof_partition_entry
    for i in range(hdr.num_partition_entries):
        raw = array[i * esz : i * esz + c.GPT_ENTRY_SIZE]
        if raw[:16] == bytes(16):
            continue  # unused entry
        ent = c.gpt_entry.parse(raw)
        number = i + 1
        if ent.ending_lba < ent.starting_lba:
            warnings.append(
                f"GPT entry {number}: ending_lba {ent.ending_lba} is before starting_lba "
                f"{ent.starting_lba}; entry ignored"
            )
            continue
        if ent.starting_lba < hdr.first_usable_lba or ent.ending_lba > hdr.last_usable_lba:
            warnings.append(
                f"GPT entry {number}: LBA {ent.starting_lba}..{ent.ending_lba} is outside the usable "
                f"range {hdr.first_usable_lba}..{hdr.last_usable_lba}"
            )
        type_guid = guid_text(ent.partition_type_guid)
        parts.append(
            Partition(
                number=number,
                start=ent.starting_lba,
                size=ent.ending_lba - ent.starting_lba + 1,  # EndingLBA is inclusive
                sector_size=sector_size,
                type=type_guid,
                type_name=c.GPT_TYPE_NAMES.get(type_guid, "unknown"),
                name=gpt_name_text(ent.partition_name),
                uuid=guid_text(ent.unique_partition_guid),
                bootable=bool(ent.attributes & c.GPT_ATTR_LEGACY_BIOS_BOOTABLE),
                attributes=ent.attributes,
                kind="gpt",
            )
        )
    return parts, warnings


def decode_mbr(raw: bytes):
    """Parse sector 0 (or an EBR); None if it has no 55 AA signature."""
    if len(raw) < c.SECTOR_SIZE or raw[c.MBR_SIGNATURE_OFFSET : c.MBR_SIGNATURE_OFFSET + 2] != c.MBR_SIGNATURE:
        return None
    return c.mbr.parse(raw[: c.SECTOR_SIZE])


def mbr_records_valid(m) -> bool:
    """True if every record's boot indicator is 0x00 or 0x80 (the kernel's msdos test)."""
    return all(rec.boot_ind in (0, c.MBR_BOOTABLE) for rec in m.partition_record)


def fat_boot_sector_valid(raw: bytes) -> bool:
    """True if sector 0 carries a plausible FAT BIOS parameter block.

    The checks of the kernel's ``fat_valid_media`` plus the ``msdos_partition`` FAT test
    (non-zero reserved sectors and FAT count), and a power-of-two sector and cluster size.
    """
    bytes_per_sector = int.from_bytes(raw[0x0B:0x0D], "little")
    sectors_per_cluster = raw[0x0D]
    reserved = int.from_bytes(raw[0x0E:0x10], "little")
    fats, media = raw[0x10], raw[0x15]
    return (
        bytes_per_sector in (512, 1024, 2048, 4096)
        and sectors_per_cluster != 0
        and sectors_per_cluster & (sectors_per_cluster - 1) == 0
        and reserved > 0
        and 1 <= fats <= 4
        and (media == 0xF0 or media >= 0xF8)
    )


def mbr_type_name(type_byte: int) -> str:
    """The fdisk name of an MBR type byte."""
    return c.MBR_TYPE_NAMES.get(type_byte, "unknown")


def _mbr_partition(number: int, start: int, rec, kind: str, disk_sig: int) -> Partition:
    return Partition(
        number=number,
        start=start,
        size=rec.nr_sects,
        sector_size=c.SECTOR_SIZE,
        type=rec.sys_ind,
        type_name=mbr_type_name(rec.sys_ind),
        uuid=f"{disk_sig:08x}-{number:02x}",
        bootable=rec.boot_ind == c.MBR_BOOTABLE,
        kind=kind,
    )


# --- reading a device ----------------------------------------------------------------------


def read_partitions(dev: BlockDevice) -> PartitionTable:
    """Read the partition table of ``dev``; ``scheme`` is None if there is none.

    GPT is preferred when its header is present (or the MBR is protective); a hybrid MBR's
    extra records are then ignored, as Linux does.
    """
    if dev.size < 2 * c.SECTOR_SIZE:
        return PartitionTable(scheme=None)
    sector0 = dev.pread(0, c.SECTOR_SIZE)
    m = decode_mbr(sector0)
    protective = bool(m) and any(rec.sys_ind == c.MBR_TYPE_GPT_PROTECTIVE for rec in m.partition_record)

    for ss in c.SECTOR_SIZES:
        if dev.size >= ss * 3 and dev.pread(ss, 8) == c.GPT_SIGNATURE:
            if m is not None and not protective and mbr_records_valid(m) and _mbr_has_partitions(m):
                # A real MBR in front of a stale GPT header (the disk was relabelled without
                # wiping): Linux ignores a GPT whose MBR is not protective (efi.c is_pmbr_valid).
                table = _read_mbr(dev, m)
                table.warnings.append(
                    "GPT header at LBA 1 ignored: the MBR has no protective (0xEE) partition, "
                    "so the MBR table is used"
                )
                return _finish(dev, table)
            return _finish(dev, _read_gpt(dev, ss))
    if protective:
        # The primary header is gone entirely; the backup may still be at the end, written for
        # 512- or 4096-byte sectors. Report the 512-byte attempt if neither works.
        try:
            return _finish(dev, _read_gpt(dev, c.SECTOR_SIZE))
        except CorruptImageError as first:
            try:
                return _finish(dev, _read_gpt(dev, c.SECTOR_SIZES[1]))
            except CorruptImageError:
                raise first from None
    if m is None or not mbr_records_valid(m):
        return PartitionTable(scheme=None)
    if not _mbr_has_partitions(m) and fat_boot_sector_valid(sector0):
        return PartitionTable(scheme=None)  # a bare FAT filesystem, not an empty MBR
    return _finish(dev, _read_mbr(dev, m))


def _mbr_has_partitions(m) -> bool:
    return any(rec.sys_ind != 0 and rec.nr_sects != 0 for rec in m.partition_record)


def _read_gpt(dev: BlockDevice, ss: int) -> PartitionTable:
    total = dev.size // ss
    last_lba = total - 1
    problems: list[str] = []

    def load(lba: int, label: str):
        if lba < 1 or lba > last_lba:
            problems.append(f"{label} GPT header: LBA {lba} is outside the device ({total} sectors)")
            return None
        raw = dev.pread(lba * ss, ss)
        hdr, why = check_gpt_header(raw, lba, ss, total)
        if why is None:
            array_len = hdr.num_partition_entries * hdr.sizeof_partition_entry
            array = dev.pread(hdr.partition_entry_lba * ss, array_len)
            why = check_gpt_entries(hdr, array)
            if why is None:
                return hdr, array
        problems.append(f"{label} GPT header at LBA {lba} (byte {lba * ss}): {why}")
        return (hdr, None) if hdr is not None else None

    primary = load(c.GPT_PRIMARY_LBA, "primary")
    warnings: list[str] = []
    if primary is not None and primary[1] is not None:
        hdr, array = primary
        used_lba = c.GPT_PRIMARY_LBA
        # Check the backup too (cheaply): a damaged backup is worth a warning.
        alt = hdr.alternate_lba
        if 1 < alt <= last_lba:
            backup = load(alt, "backup")
            if backup is None or backup[1] is None:
                warnings.append(problems[-1] + "; the primary header is intact and used")
        else:
            warnings.append(
                f"backup GPT header: field alternate_lba {alt} of the primary header is outside "
                f"the device ({total} sectors)"
            )
    else:
        # Prefer where the primary said the backup is (if its header was readable), then the end.
        candidates = []
        if primary is not None and primary[0] is not None and 1 < primary[0].alternate_lba <= last_lba:
            candidates.append(primary[0].alternate_lba)
        if last_lba not in candidates:
            candidates.append(last_lba)
        found = None
        for lba in candidates:
            found = load(lba, "backup")
            if found is not None and found[1] is not None:
                used_lba = lba
                break
            found = None
        if found is None:
            raise CorruptImageError("; ".join(problems) + "; no valid GPT header", where=dev.name)
        hdr, array = found
        warnings.append(f"{problems[0]}; using the backup header at LBA {used_lba}")

    parts, entry_warnings = decode_gpt_entries(hdr, array, ss)
    return PartitionTable(
        scheme="gpt",
        sector_size=ss,
        partitions=parts,
        warnings=warnings + entry_warnings,
        disk_id=guid_text(hdr.disk_guid),
        header_lba=used_lba,
    )


def _read_mbr(dev: BlockDevice, m) -> PartitionTable:
    ss = c.SECTOR_SIZE
    sig = m.unique_mbr_signature
    table = PartitionTable(scheme="mbr", sector_size=ss, disk_id=f"{sig:08x}")
    extended = []
    for i, rec in enumerate(m.partition_record):
        if rec.sys_ind == 0 or rec.nr_sects == 0:
            continue  # empty slot; its number stays reserved, as in fdisk
        kind = "extended" if rec.sys_ind in c.MBR_EXTENDED_TYPES else "primary"
        part = _mbr_partition(i + 1, rec.start_sect, rec, kind, sig)
        table.partitions.append(part)
        if kind == "extended":
            extended.append(part)
    next_number = 5
    for ext in extended:
        next_number = _read_ebr_chain(dev, ext, sig, next_number, table)
    return table


def _read_ebr_chain(dev: BlockDevice, ext: Partition, sig: int, number: int, table: PartitionTable) -> int:
    """Append the logical partitions of extended partition ``ext``; return the next number.

    Each EBR's record 0 is a logical partition relative to the EBR itself; record 1 links the
    next EBR relative to the start of the extended partition (the layout Linux's
    ``parse_extended`` and libfdisk follow).
    """
    ss = c.SECTOR_SIZE
    total = dev.size // ss
    seen: set[int] = set()
    ebr_lba = ext.start
    ext_end = ext.start + ext.size  # exclusive
    while True:
        where = f"EBR at LBA {ebr_lba} (byte {ebr_lba * ss})"
        if ebr_lba in seen:
            table.warnings.append(f"{where}: the EBR chain loops back; chain ends here")
            break
        if len(seen) >= MAX_LOGICAL:
            table.warnings.append(f"{where}: more than {MAX_LOGICAL} logical partitions; chain ends here")
            break
        if not ext.start <= ebr_lba < min(ext_end, total):
            table.warnings.append(f"{where}: outside the extended partition {ext.number}; chain ends here")
            break
        seen.add(ebr_lba)
        raw = dev.pread(ebr_lba * ss, ss)
        ebr = decode_mbr(raw)
        if ebr is None:
            if raw != bytes(ss):  # an all-zero first EBR is simply an empty extended partition
                table.warnings.append(f"{where}: no 55 AA signature; chain ends here")
            break
        data, link = ebr.partition_record[0], ebr.partition_record[1]
        if data.sys_ind != 0 and data.nr_sects != 0:
            start = ebr_lba + data.start_sect
            if start + data.nr_sects > ext_end:
                table.warnings.append(
                    f"{where}: logical partition {number} (LBA {start}..{start + data.nr_sects - 1}) "
                    f"reaches past the extended partition {ext.number}"
                )
            table.partitions.append(_mbr_partition(number, start, data, "logical", sig))
            number += 1
        if link.sys_ind not in c.MBR_EXTENDED_TYPES or link.nr_sects == 0:
            break
        ebr_lba = ext.start + link.start_sect
    return number


def _finish(dev: BlockDevice, table: PartitionTable) -> PartitionTable:
    """Clip partitions to the device, note overlaps, and attach a slice device to each."""
    total = dev.size // table.sector_size
    for part in table.partitions:
        if part.start >= total:
            table.warnings.append(
                f"partition {part.number} starts at sector {part.start}, past the end of the device "
                f"({total} sectors); it is empty"
            )
            part.size = 0
            part.start = min(part.start, total)
        elif part.start + part.size > total:
            table.warnings.append(
                f"partition {part.number} (sectors {part.start}..{part.end}) reaches past the end of "
                f"the device ({total} sectors); truncated"
            )
            part.size = total - part.start
    data_parts = sorted((p for p in table.partitions if p.kind != "extended" and p.size), key=lambda p: p.start)
    for a, b in zip(data_parts, data_parts[1:]):
        if b.start <= a.end:
            table.warnings.append(f"partitions {a.number} and {b.number} overlap (sectors {b.start}..{min(a.end, b.end)})")
    for part in table.partitions:
        # An extended partition's slice covers only its first sector in Linux; give the whole
        # range anyway (it is never a filesystem), so callers can still inspect the EBRs.
        part.device = SliceDevice(dev, part.offset, part.length, name=f"{dev.name} partition {part.number}")
    return table
