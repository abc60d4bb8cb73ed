"""What is on a device or partition: filesystem (and container) identification by magic.

Like libblkid's probes, each identifier reads a few bytes at fixed offsets and checks a magic
number plus enough sanity to avoid false positives, then takes the label and UUID when they
sit in the same block. Nothing here parses a filesystem; the ext4 engine does that.

Offsets come from each format's own definition, cited per probe; they are read-only sniffing
offsets, not structures Nuwa decodes or writes (so they are not in a layout module).
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass, field

from nuwa.formats.blockdev import BlockDevice
from nuwa.formats.partitions import fat_boot_sector_valid


@dataclass
class FsSignature:
    """A recognised filesystem or container on a device."""

    type: str  # "ext4", "ext3", "ext2", "jbd", "xfs", "btrfs", "vfat", "swap", "LVM2_member", "crypto_LUKS"
    label: str = ""
    uuid: str = ""
    version: str = ""  # e.g. "FAT32", "2" for LUKS2, "1" for swap v1
    details: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """The JSON form used by ``nuwa info --json``."""
        out = {"type": self.type, "label": self.label, "uuid": self.uuid}
        if self.version:
            out["version"] = self.version
        out.update(self.details)
        return out


def _read(dev: BlockDevice, offset: int, n: int) -> bytes | None:
    """``n`` bytes at ``offset``, or None if the device is too small."""
    if offset + n > dev.size:
        return None
    return dev.pread(offset, n)


def _text(raw: bytes, encoding: str = "utf-8") -> str:
    return raw.split(b"\0", 1)[0].decode(encoding, errors="replace").rstrip()


# --- ext2/3/4 (kernel Documentation/filesystems/ext4/super.rst; e2fsprogs lib/ext2fs/ext2_fs.h)

EXT_SB_OFFSET = 1024
EXT_SUPER_MAGIC = 0xEF53
# feature bits that decide the name, as libblkid's probe_ext (ext.c) does
EXT3_FEATURE_COMPAT_HAS_JOURNAL = 0x0004
EXT3_FEATURE_INCOMPAT_JOURNAL_DEV = 0x0008
EXT3_FEATURE_INCOMPAT_SUPP = 0x0002 | 0x0004 | 0x0010  # filetype, recover, meta_bg
EXT3_FEATURE_RO_COMPAT_SUPP = 0x0001 | 0x0002 | 0x0004  # sparse_super, large_file, btree_dir


def probe_ext(sb: bytes) -> FsSignature | None:
    """ext2/ext3/ext4 (or an external journal) from the 1024-byte superblock."""
    (magic,) = struct.unpack_from("<H", sb, 0x38)  # s_magic
    if magic != EXT_SUPER_MAGIC:
        return None
    log_block = struct.unpack_from("<I", sb, 0x18)[0]  # s_log_block_size
    if log_block > 6:  # blocks of 1 KiB .. 64 KiB
        return None
    compat, incompat, ro_compat = struct.unpack_from("<III", sb, 0x5C)  # s_feature_{compat,incompat,ro_compat}
    if incompat & EXT3_FEATURE_INCOMPAT_JOURNAL_DEV:
        kind = "jbd"
    elif incompat & ~EXT3_FEATURE_INCOMPAT_SUPP or ro_compat & ~EXT3_FEATURE_RO_COMPAT_SUPP:
        kind = "ext4"  # anything ext3 cannot mount (extents, 64bit, flex_bg, metadata_csum, ...)
    elif compat & EXT3_FEATURE_COMPAT_HAS_JOURNAL:
        kind = "ext3"
    else:
        kind = "ext2"
    return FsSignature(
        type=kind,
        uuid=str(uuid.UUID(bytes=sb[0x68:0x78])),  # s_uuid
        label=_text(sb[0x78:0x88]),  # s_volume_name
        details={"block_size": 1024 << log_block},
    )


# --- XFS (xfs_format.h struct xfs_dsb, big-endian) -----------------------------------------


def probe_xfs(sb: bytes) -> FsSignature | None:
    """XFS from its primary superblock at offset 0."""
    if sb[:4] != b"XFSB":  # sb_magicnum
        return None
    (blocksize,) = struct.unpack_from(">I", sb, 4)  # sb_blocksize
    if blocksize < 512 or blocksize > 65536 or blocksize & (blocksize - 1):
        return None
    return FsSignature(
        type="xfs",
        uuid=str(uuid.UUID(bytes=sb[32:48])),  # sb_uuid
        label=_text(sb[108:120]),  # sb_fname[12]
        details={"block_size": blocksize},
    )


# --- btrfs (btrfs_tree.h struct btrfs_super_block, at 64 KiB) ------------------------------

BTRFS_SB_OFFSET = 0x10000


def probe_btrfs(sb: bytes) -> FsSignature | None:
    """btrfs from the primary superblock copy at 64 KiB."""
    if sb[0x40:0x48] != b"_BHRfS_M":  # magic
        return None
    return FsSignature(
        type="btrfs",
        uuid=str(uuid.UUID(bytes=sb[0x20:0x30])),  # fsid
        label=_text(sb[0x12B:0x22B]),  # label[256], after the 98-byte dev_item at 0xC9
    )


# --- FAT (Microsoft FAT specification 1.03, section 3: the BPB) ----------------------------


def probe_vfat(bs: bytes) -> FsSignature | None:
    """FAT12/16/32 from the boot sector."""
    if bs[0x1FE:0x200] != b"\x55\xaa" or bs[0] not in (0xEB, 0xE9) or not fat_boot_sector_valid(bs):
        return None
    (root_entries,) = struct.unpack_from("<H", bs, 0x11)  # BPB_RootEntCnt
    (fat16_size,) = struct.unpack_from("<H", bs, 0x16)  # BPB_FATSz16
    if fat16_size == 0 and root_entries == 0:
        ext = 0x40  # FAT32: extended BPB starts at BS_DrvNum (0x40)
        version = "FAT32"
    else:
        ext = 0x24
        version = "FAT16" if bs[0x36:0x3B] == b"FAT16" else "FAT12" if bs[0x36:0x3B] == b"FAT12" else "FAT"
    label, serial = "", ""
    if bs[ext + 2] == 0x29:  # BS_BootSig: the serial number and label fields are present
        (vol_id,) = struct.unpack_from("<I", bs, ext + 3)  # BS_VolID
        serial = f"{vol_id >> 16:04X}-{vol_id & 0xFFFF:04X}"
        label = bs[ext + 7 : ext + 18].decode("latin-1").rstrip()  # BS_VolLab
        if label == "NO NAME":
            label = ""
    return FsSignature(type="vfat", uuid=serial, label=label, version=version)


# --- Linux swap (include/linux/swap.h union swap_header) -----------------------------------

SWAP_PAGE_SIZES = (4096, 8192, 16384, 65536)


def probe_swap(dev: BlockDevice) -> FsSignature | None:
    """Linux swap (v1 header): the magic sits in the last 10 bytes of the first page."""
    for page in SWAP_PAGE_SIZES:
        magic = _read(dev, page - 10, 10)
        if magic is None:
            break
        if magic in (b"SWAPSPACE2", b"SWAP-SPACE"):
            hdr = dev.pread(1024, 44)  # info: version, last_page, nr_badpages, sws_uuid, sws_volume
            sig = FsSignature(type="swap", version="1" if magic == b"SWAPSPACE2" else "0")
            sig.details["page_size"] = page
            if magic == b"SWAPSPACE2":
                sig.uuid = str(uuid.UUID(bytes=hdr[12:28]))
                sig.label = _text(hdr[28:44])
            return sig
    return None


# --- LVM2 physical volume (lvm2 lib/label/label.h, lib/format_text/layout.h) ----------------


def probe_lvm2(head: bytes) -> FsSignature | None:
    """An LVM2 PV: a "LABELONE" label in one of the first four sectors."""
    for sector in range(4):
        lab = head[sector * 512 : (sector + 1) * 512]
        if lab[:8] == b"LABELONE" and lab[24:32] == b"LVM2 001":  # label_header id, type
            (offset,) = struct.unpack_from("<I", lab, 20)  # offset_xl: where pv_header starts
            if offset > 512 - 40:
                return None
            raw = lab[offset : offset + 32].decode("ascii", errors="replace")  # pv_header.pv_uuid
            parts = (raw[0:6], raw[6:10], raw[10:14], raw[14:18], raw[18:22], raw[22:26], raw[26:32])
            return FsSignature(type="LVM2_member", uuid="-".join(parts), version="LVM2 001")
    return None


# --- LUKS (cryptsetup docs/on-disk-format{,-luks2}.pdf) ------------------------------------


def probe_luks(hdr: bytes) -> FsSignature | None:
    """LUKS1 or LUKS2: identified only; Nuwa never opens encrypted volumes."""
    if hdr[:6] not in (b"LUKS\xba\xbe", b"SKUL\xba\xbe"):  # magic (SKUL = LUKS2 secondary header)
        return None
    (version,) = struct.unpack_from(">H", hdr, 6)
    label = _text(hdr[24:72]) if version == 2 else ""  # LUKS2 label[48]
    return FsSignature(type="crypto_LUKS", version=str(version), uuid=_text(hdr[168:208], "ascii"), label=label)


# --- the dispatcher ------------------------------------------------------------------------


def sniff(dev: BlockDevice) -> FsSignature | None:
    """Identify what ``dev`` holds, or None if nothing known is there.

    Order matters where signatures can coexist: containers and filesystems whose magic sits in
    the first sectors come first; ext (at 1 KiB) after LUKS and LVM, whose headers would be
    overwritten by an ext superblock but not the other way round; swap last (its magic is at the
    end of a page that filesystems do not clear).
    """
    head = _read(dev, 0, 4096) or _read(dev, 0, min(dev.size, 4096))
    if not head or len(head) < 512:
        return None
    for probe in (probe_luks, probe_lvm2, probe_xfs):
        sig = probe(head)
        if sig:
            return sig
    if len(head) >= EXT_SB_OFFSET + 1024:
        sig = probe_ext(head[EXT_SB_OFFSET : EXT_SB_OFFSET + 1024])
        if sig:
            return sig
    sb = _read(dev, BTRFS_SB_OFFSET, 4096)
    if sb is not None:
        sig = probe_btrfs(sb)
        if sig:
            return sig
    sig = probe_vfat(head[:512])
    if sig:
        return sig
    return probe_swap(dev)
