"""On-disk layout of partition tables: the MBR (with its EBR chain) and GPT.

Layout only: the structures, their constants and the type-name tables. Reading and checking
them is in :mod:`nuwa.formats.partitions`.

Field names are the Linux kernel's (``block/partitions/efi.h`` for GPT,
``include/linux/msdos_partition.h`` for MBR records), which map one to one onto the UEFI
specification's names (2.10, section 5.2.1 "Legacy Master Boot Record", 5.3.2 "GPT Header",
5.3.3 "GPT Partition Entry Array"); the UEFI name is given in each comment.
All integers are little-endian.
"""

from __future__ import annotations

from construct import Array, Bytes, Const, Int8ul, Int16ul, Int32ul, Int64ul, Struct

#: the only sector size MBR knows; GPT may also sit on 4096-byte sectors
SECTOR_SIZE = 512
SECTOR_SIZES = (512, 4096)

# --- MBR (UEFI 2.10 section 5.2.1, table 5-1 and 5-2) ------------------------------------
# Sector 0: 440 bytes of boot code, a 4-byte disk signature, 2 reserved bytes, four 16-byte
# partition records at 0x1BE and the signature 55 AA at 0x1FE. An EBR (extended boot record,
# the head of each logical partition) has the same layout; only its first two records are used.

MBR_PART_OFFSET = 0x1BE
MBR_DISK_SIGNATURE_OFFSET = 0x1B8
MBR_SIGNATURE_OFFSET = 0x1FE
MBR_SIGNATURE = b"\x55\xaa"

#: ``struct msdos_partition`` (UEFI "Legacy MBR Partition Record")
mbr_partition = Struct(
    "boot_ind" / Int8ul,  # BootIndicator: 0x80 = bootable, 0x00 = not; anything else is invalid
    "head" / Int8ul,  # StartingCHS[0]
    "sector" / Int8ul,  # StartingCHS[1]: sector in bits 0-5, cylinder bits 8-9 in bits 6-7
    "cyl" / Int8ul,  # StartingCHS[2]
    "sys_ind" / Int8ul,  # OSType: the partition type byte
    "end_head" / Int8ul,  # EndingCHS[0]
    "end_sector" / Int8ul,  # EndingCHS[1]
    "end_cyl" / Int8ul,  # EndingCHS[2]
    "start_sect" / Int32ul,  # StartingLBA (an EBR's logical entry: relative to that EBR)
    "nr_sects" / Int32ul,  # SizeInLBA
)

#: the whole of sector 0 (UEFI "Legacy MBR"); also the layout of every EBR
mbr = Struct(
    "boot_code" / Bytes(440),  # BootCode
    "unique_mbr_signature" / Int32ul,  # UniqueMBRDiskSignature (Linux: the "disk identifier")
    "unknown" / Int16ul,  # Unknown (0, or 0x5A5A for copy-protected)
    "partition_record" / Array(4, mbr_partition),  # PartitionRecord[4]
    "signature" / Bytes(2),  # Signature: 55 AA
)

MBR_BOOTABLE = 0x80

#: type bytes of extended partitions (DOS extended, W95 extended LBA, Linux extended)
MBR_EXTENDED_TYPES = frozenset({0x05, 0x0F, 0x85})
#: the protective-MBR type that announces a GPT (UEFI 5.2.3)
MBR_TYPE_GPT_PROTECTIVE = 0xEE

#: friendly names of common MBR type bytes (as fdisk prints them)
MBR_TYPE_NAMES = {
    0x00: "Empty",
    0x01: "FAT12",
    0x04: "FAT16 <32M",
    0x05: "Extended",
    0x06: "FAT16",
    0x07: "HPFS/NTFS/exFAT",
    0x0B: "W95 FAT32",
    0x0C: "W95 FAT32 (LBA)",
    0x0E: "W95 FAT16 (LBA)",
    0x0F: "W95 Ext'd (LBA)",
    0x11: "Hidden FAT12",
    0x27: "Hidden NTFS WinRE",
    0x82: "Linux swap / Solaris",
    0x83: "Linux",
    0x85: "Linux extended",
    0x8E: "Linux LVM",
    0xA5: "FreeBSD",
    0xA6: "OpenBSD",
    0xA9: "NetBSD",
    0xDA: "Non-FS data",
    0xEE: "GPT",
    0xEF: "EFI (FAT-12/16/32)",
    0xFD: "Linux raid autodetect",
}

# --- GPT (UEFI 2.10 section 5.3) ----------------------------------------------------------
# The primary header is at LBA 1, its entry array usually at LBA 2; the backup header is at the
# last LBA with my_lba/alternate_lba swapped and its entry array just before it.

GPT_SIGNATURE = b"EFI PART"
GPT_REVISION = 0x00010000
GPT_HEADER_SIZE = 92  # the defined part of the header; the rest of the sector must be zero
GPT_ENTRY_SIZE = 128  # the defined part of an entry; SizeOfPartitionEntry is 128 * 2**n
GPT_PRIMARY_LBA = 1

#: ``gpt_header`` (UEFI table 5-5 "GPT Header")
gpt_header = Struct(
    "signature" / Const(GPT_SIGNATURE),  # Signature
    "revision" / Int32ul,  # Revision (0x00010000 for 1.0)
    "header_size" / Int32ul,  # HeaderSize: 92 <= n <= logical block size
    "header_crc32" / Int32ul,  # HeaderCRC32: CRC32 of header_size bytes with this field zeroed
    "reserved1" / Int32ul,  # Reserved: must be zero
    "my_lba" / Int64ul,  # MyLBA: the LBA holding this header
    "alternate_lba" / Int64ul,  # AlternateLBA: the LBA of the other header
    "first_usable_lba" / Int64ul,  # FirstUsableLBA
    "last_usable_lba" / Int64ul,  # LastUsableLBA (inclusive)
    "disk_guid" / Bytes(16),  # DiskGUID (mixed-endian, like every EFI GUID)
    "partition_entry_lba" / Int64ul,  # PartitionEntryLBA
    "num_partition_entries" / Int32ul,  # NumberOfPartitionEntries
    "sizeof_partition_entry" / Int32ul,  # SizeOfPartitionEntry
    "partition_entry_array_crc32" / Int32ul,  # PartitionEntryArrayCRC32 (count * size bytes)
)

#: byte offset of ``header_crc32`` inside the header (zeroed while computing the CRC)
GPT_HEADER_CRC_OFFSET = 16

#: ``gpt_entry`` (UEFI table 5-6 "GPT Partition Entry")
gpt_entry = Struct(
    "partition_type_guid" / Bytes(16),  # PartitionTypeGUID; all zero = unused entry
    "unique_partition_guid" / Bytes(16),  # UniquePartitionGUID
    "starting_lba" / Int64ul,  # StartingLBA
    "ending_lba" / Int64ul,  # EndingLBA: inclusive, so size = ending - starting + 1
    "attributes" / Int64ul,  # Attributes (table 5-7)
    "partition_name" / Bytes(72),  # PartitionName: 36 UTF-16LE code units, NUL padded
)

# Attribute bits (UEFI table 5-7)
GPT_ATTR_REQUIRED = 1 << 0  # RequiredPartition
GPT_ATTR_NO_BLOCK_IO = 1 << 1  # NoBlockIOProtocol
GPT_ATTR_LEGACY_BIOS_BOOTABLE = 1 << 2  # LegacyBIOSBootable

#: friendly names of common partition type GUIDs (UEFI table 5-8; the Discoverable
#: Partitions Specification for the Linux ones; names as fdisk prints them)
GPT_TYPE_NAMES = {
    "00000000-0000-0000-0000-000000000000": "Unused",
    "C12A7328-F81F-11D2-BA4B-00A0C93EC93B": "EFI System",
    "024DEE41-33E7-11D3-9D69-0008C781F39F": "MBR partition scheme",
    "21686148-6449-6E6F-744E-656564454649": "BIOS boot",
    "0FC63DAF-8483-4772-8E79-3D69D8477DE4": "Linux filesystem",
    "0657FD6D-A4AB-43C4-84E5-0933C84B4F4F": "Linux swap",
    "E6D6D379-F507-44C2-A23C-238F2A3DF928": "Linux LVM",
    "A19D880F-05FC-4D3B-A006-743F0F84911E": "Linux RAID",
    "CA7D7CCB-63ED-4C53-861C-1742536059CC": "Linux LUKS",
    "BC13C2FF-59E6-4262-A352-B275FD6F7172": "Linux extended boot",
    "933AC7E1-2EB4-4F13-B844-0E14E2AEF915": "Linux home",
    "3B8F8425-20E0-4F3B-907F-1A25A76F98E8": "Linux server data",
    "4D21B016-B534-45C2-A9FB-5C16E091FD2D": "Linux variable data",
    "7EC6F557-3BC5-4ACA-B293-16EF5DF639D1": "Linux temporary data",
    "44479540-F297-41B2-9AF7-D131D5F0458A": "Linux root (x86)",
    "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709": "Linux root (x86-64)",
    "B921B045-1DF0-41C3-AF44-4C6F280D3FAE": "Linux root (ARM-64)",
    "69DAD710-2CE4-4E3C-B16C-21A1D49ABED3": "Linux root (ARM)",
    "8484680C-9521-48C6-9C11-B0720656F69E": "Linux /usr (x86-64)",
    "B0E01050-EE5F-4390-949A-9101B17104E9": "Linux /usr (ARM-64)",
    "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7": "Microsoft basic data",
    "E3C9E316-0B5C-4DB8-817D-F92DF00215AE": "Microsoft reserved",
    "DE94BBA4-06D1-4D40-A16A-BFD50179D6AC": "Windows recovery environment",
    "48465300-0000-11AA-AA11-00306543ECAC": "Apple HFS/HFS+",
    "516E7CB4-6ECF-11D6-8FF8-00022D09712B": "FreeBSD data",
    "83BD6B9D-7F41-11DC-BE0B-001560B84F0F": "FreeBSD boot",
    "9E1A2D38-C612-4316-AA26-8B49521E5A8B": "PowerPC PReP boot",
}
