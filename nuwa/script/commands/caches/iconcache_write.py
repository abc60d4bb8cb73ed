"""GTK's ``icon-theme.cache`` format (GTK 3.24 ``gtk/updateiconcache.c``, ``gtkiconcachevalidator.c``).

Layout (all numbers big-endian, every block 4-byte aligned)::

    header      CARD16 major (1), CARD16 minor (0), CARD32 hash offset (12),
                CARD32 directory list offset
    hash        CARD32 n_buckets, n_buckets x CARD32 first icon of the chain (or 0xffffffff)
    icon        CARD32 next icon in the chain (or 0xffffffff), CARD32 name offset,
                CARD32 image list offset; then the name (if new), the image list, image data
    image list  CARD32 n_images, n_images x (CARD16 directory index, CARD16 flags,
                CARD32 image data offset or 0)
    image data  CARD32 pixel data offset, CARD32 meta data offset; then the meta data:
                CARD32 embedded rect, attach point list, display name list offsets;
                CARD16 x0 y0 x1 y1; CARD32 n + n x (CARD16 x, y); CARD32 n + n x (CARD32
                language offset, CARD32 name offset) and the strings not written before
    dir list    CARD32 n_dirs, n_dirs x CARD32 string offset, then the strings

Strings are NUL-terminated and padded to 4 bytes; a string already written anywhere in the
file (an icon name, a directory, a display name) is referenced, not written again: the
"string pool" of ``updateiconcache.c`` (``find_string``/``add_string``), whose state decides
both the sizes reserved for a node and the offsets written, so it is kept here as the C code
keeps it (0 unknown, -1 counted but not written, -offset reserved, +offset written).

This module only builds bytes from already-scanned data and validates bytes: no I/O.
Pixel data (``--include-image-data``) is not produced: the caller defers before.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

HAS_SUFFIX_XPM = 1 << 0
HAS_SUFFIX_SVG = 1 << 1
HAS_SUFFIX_PNG = 1 << 2
HAS_ICON_FILE = 1 << 3
MAJOR_VERSION = 1
MINOR_VERSION = 0
HASH_OFFSET = 12
NO_OFFSET = 0xFFFFFFFF

# glib gprimes.c g_primes: g_spaced_primes_closest returns the first one above its argument
G_PRIMES = (11, 19, 37, 73, 109, 163, 251, 367, 557, 823, 1237, 1861, 2777, 4177, 6247, 9371, 14057,
            21089, 31627, 47431, 71143, 106721, 160073, 240101, 360163, 540217, 810343, 1215497,
            1823231, 2734867, 4102283, 6153409, 9230113, 13845163)


def spaced_primes_closest(num: int) -> int:
    """``g_spaced_primes_closest``: the smallest table prime greater than ``num``."""
    for p in G_PRIMES:
        if p > num:
            return p
    return G_PRIMES[-1]


def icon_name_hash(name: bytes) -> int:
    """``icon_name_hash``: h = h * 31 + c over the name's bytes read as *signed* chars, 32-bit."""
    h = 0
    for i, b in enumerate(name):
        c = b - 256 if b >= 128 else b
        h = (c if i == 0 else (h << 5) - h + c) & 0xFFFFFFFF
    return h


def align4(n: int) -> int:
    """``ALIGN_VALUE (n, 4)``."""
    return (n + 3) & ~3


@dataclass(eq=False)
class IconData:
    """What ``load_icon_data`` keeps of a ``.icon`` file (shared by the paths naming it)."""

    embedded_rect: tuple[int, int, int, int] | None = None
    attach_points: list[tuple[int, int]] = field(default_factory=list)
    #: (language, name) pairs, in the key file's key order
    display_names: list[tuple[bytes, bytes]] = field(default_factory=list)
    offset: int = 0
    size: int = -1  # -1: not computed yet (it depends on the string pool at that time)


@dataclass(eq=False)
class Image:
    """One icon name in one directory: the suffix flags and its ``.icon`` data if any."""

    dir_index: int
    flags: int = 0
    icon_data: IconData | None = None
    icon_data_size: int = 0


class _Writer:
    """``write_file`` and what it calls, writing into a bytearray at a file position."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.pool: dict[bytes, int] = {}

    def card16(self, n: int) -> None:
        self.out += struct.pack(">H", n & 0xFFFF)

    def card32(self, n: int) -> None:
        self.out += struct.pack(">I", n & 0xFFFFFFFF)

    def string(self, s: bytes) -> None:
        self.out += s + b"\0" * (align4(len(s) + 1) - len(s))

    def meta_data_size(self, image: Image) -> int:
        """``get_image_meta_data_size``: counted once per IconData, for its first Image."""
        data = image.icon_data
        if image.icon_data_size == 0 and data is not None and data.size < 0:
            size = 0
            if data.embedded_rect or data.attach_points or data.display_names:
                size += 12
            if data.embedded_rect:
                size += 8
            if data.attach_points:
                size += 4 + 4 * len(data.attach_points)
            if data.display_names:
                size += 4 + 8 * len(data.display_names)
                for s in (x for pair in data.display_names for x in pair):
                    if self.pool.get(s, 0) == 0:
                        size += align4(len(s) + 1)
                        self.pool[s] = -1
            image.icon_data_size = size
            data.size = 0
        return image.icon_data_size

    def data_size(self, image: Image) -> int:
        """``get_image_data_size`` (no pixel data: index-only caches)."""
        n = self.meta_data_size(image)
        return n + 8 if n > 0 or image.icon_data is not None else n

    def icon_data(self, data: IconData, offset: int) -> None:
        """``write_icon_data``: the three sub-offsets, then the rect, points and names."""
        ofs = offset + 12
        self.card32(ofs if data.embedded_rect else 0)
        if data.embedded_rect:
            ofs += 8
        self.card32(ofs if data.attach_points else 0)
        if data.attach_points:
            ofs += 4 + 4 * len(data.attach_points)
        self.card32(ofs if data.display_names else 0)
        if data.embedded_rect:
            for v in data.embedded_rect:
                self.card16(v)
        if data.attach_points:
            self.card32(len(data.attach_points))
            for x, y in data.attach_points:
                self.card16(x)
                self.card16(y)
        if data.display_names:
            self.card32(len(data.display_names))
            self._string_array([x for pair in data.display_names for x in pair], ofs + 4 + 8 * len(data.display_names))

    def _string_array(self, strings: list[bytes], tmp: int) -> None:
        """The offsets of ``strings`` (new ones reserved from ``tmp`` on), then the new strings."""
        for s in strings:
            v = self.pool.get(s, 0)
            if v in (0, -1):
                v = tmp
                tmp += align4(len(s) + 1)
                self.pool[s] = -v  # reserved: a repeated string in the array reuses it
            elif v < 0:
                v = -v
            self.card32(v)
        for s in strings:
            v = self.pool[s]
            if v < 0:
                assert -v == len(self.out), "string offsets out of step"
                self.pool[s] = -v
                self.string(s)

    def bucket(self, chain: list[tuple[bytes, list[Image]]], offset: int) -> int:
        """``write_bucket``: one hash chain from ``offset``; returns the offset after it."""
        for k, (name, images) in enumerate(chain):
            assert offset == len(self.out)
            node_size = 12
            if self.pool.get(name, 0) == 0:
                node_size += align4(len(name) + 1)
                self.pool[name] = -1
            node_size += 4 + 8 * len(images)
            image_data_size = sum(self.data_size(im) for im in images)
            image_data_offset = offset + node_size
            next_offset = image_data_offset + image_data_size
            self.card32(next_offset if k + 1 < len(chain) else NO_OFFSET)
            name_size = 0
            name_offset = self.pool.get(name, 0)
            if name_offset <= 0:
                name_offset = offset + 12
                name_size = align4(len(name) + 1)
                self.pool[name] = name_offset
            self.card32(name_offset)
            image_list_offset = offset + 12 + name_size
            self.card32(image_list_offset)
            if name_size:
                self.string(name)
            self.card32(len(images))
            data_offset = image_data_offset
            for im in images:
                self.card16(im.dir_index)
                self.card16(im.flags)
                size = self.data_size(im)
                self.card32(data_offset if size > 0 else 0)
                data_offset += size
            for im in images:
                meta = self.meta_data_size(im)
                if self.data_size(im) == 0:
                    continue
                self.card32(0)  # no pixel data
                if meta > 0:
                    im.icon_data.offset = image_data_offset + 8
                    self.card32(im.icon_data.offset)
                    self.icon_data(im.icon_data, im.icon_data.offset)
                else:
                    self.card32(im.icon_data.offset if im.icon_data is not None else 0)
                image_data_offset += meta + 8
            offset = next_offset
        return offset


def build_cache(files: list[tuple[bytes, list[Image]]], directories: list[bytes]) -> bytes:
    """``write_file``: the cache for ``files`` (icon name -> its images, in the order
    ``g_hash_table_foreach_remove`` visits the files table) and the directory list."""
    size = spaced_primes_closest(len(files) // 3)
    nodes: list[list[tuple[bytes, list[Image]]]] = [[] for _ in range(size)]
    for name, images in files:  # convert_to_hash: each node goes in front of its chain
        nodes[icon_name_hash(name) % size].insert(0, (name, images))
    w = _Writer()
    w.card16(MAJOR_VERSION)
    w.card16(MINOR_VERSION)
    w.card32(HASH_OFFSET)
    w.card32(0)  # rewritten at the end
    w.card32(size)
    w.out += b"\0" * (4 * size)  # bucket offsets, rewritten once the chains are placed
    offset = HASH_OFFSET + 4 + 4 * size
    heads = []
    for chain in nodes:
        heads.append(offset if chain else NO_OFFSET)
        if chain:
            offset = w.bucket(chain, offset)
    w.out[HASH_OFFSET + 4:HASH_OFFSET + 4 + 4 * size] = struct.pack(f">{size}I", *heads)
    dir_list = offset
    w.card32(len(directories))
    w._string_array(directories, dir_list + 4 + 4 * len(directories))
    w.out[8:12] = struct.pack(">I", dir_list)
    return bytes(w.out)


def _isgraph(b: int) -> bool:
    return 0x21 <= b <= 0x7E


class _Validator:
    """``_gtk_icon_cache_validate`` with CHECK_OFFSETS | CHECK_STRINGS (and pixel data refused)."""

    def __init__(self, data: bytes):
        self.data = data
        self.size = len(data)
        # the real validator reads a mapped file: the bytes just past its end read as zeros
        self.padded = data + b"\0" * 4
        self.n_directories = 0

    # offsets are guint32 sums in the C code: they wrap
    def u16(self, off: int) -> int | None:
        off &= 0xFFFFFFFF
        return struct.unpack_from(">H", self.padded, off)[0] if off < self.size else None

    def u32(self, off: int) -> int | None:
        off &= 0xFFFFFFFF
        return struct.unpack_from(">I", self.padded, off)[0] if off < self.size else None

    def string(self, off: int, utf8: bool = False) -> bool:
        if off >= self.size:
            return False
        for i in range(1024):
            if (off + i) & 0xFFFFFFFF >= self.size:
                return False
            c = self.data[off + i]
            if c == 0:
                break
            if not utf8 and not _isgraph(c):
                return False
        else:
            return False
        if utf8:
            try:
                self.data[off:off + i].decode("utf-8")
            except UnicodeDecodeError:
                return False
        return True

    def meta(self, off: int) -> bool:
        rect, points, names = self.u32(off), self.u32(off + 4), self.u32(off + 8)
        if rect is None or points is None or names is None:
            return False
        if rect and not (rect + 4) & 0xFFFFFFFF < self.size:
            return False
        if points:
            n = self.u32(points)
            if n is None or not (points + 4 + 4 * n) & 0xFFFFFFFF < self.size:
                return False
        if names:
            n = self.u32(names)
            if n is None:
                return False
            for i in range(n):
                lang, name = self.u32(names + 4 + 8 * i) or 0, self.u32(names + 8 + 8 * i) or 0
                if not self.string(lang) or not self.string(name, utf8=True):
                    return False
        return True

    def image(self, off: int) -> bool:
        index, flags, data = self.u16(off), self.u16(off + 2), self.u32(off + 4)
        if index is None or flags is None or data is None:
            return False
        if not (index < self.n_directories and flags < 16):
            return False
        if data:
            pixel, meta = self.u32(data), self.u32(data + 4)
            if pixel is None or meta is None:
                return False
            if pixel:
                kind, length = self.u32(pixel), self.u32(pixel + 4)
                if kind is None or length is None or kind != 0 or not (pixel + 8 + length) & 0xFFFFFFFF < self.size:
                    return False
                raise NotImplementedError("pixel data (checking it decodes it with gdk-pixbuf)")
            if meta and not self.meta(meta):
                return False
        return True

    def icon(self, off: int) -> bool:
        seen: set[int] = set()
        while True:
            if off in seen:
                raise NotImplementedError("an icon chain that loops (the real validator recurses forever)")
            seen.add(off)
            chain, name, images = self.u32(off), self.u32(off + 4), self.u32(off + 8)
            if chain is None or name is None or images is None:
                return False
            if not self.string(name):
                return False
            n = self.u32(images)
            if n is None:
                return False
            if not all(self.image(images + 4 + 8 * i) for i in range(n)):
                return False
            if chain == NO_OFFSET:
                return True
            off = chain

    def run(self) -> bool:
        if self.u16(0) != MAJOR_VERSION or self.u16(2) != MINOR_VERSION:
            return False
        hash_offset, dir_list = self.u32(4), self.u32(8)
        if hash_offset is None or dir_list is None:
            return False
        n = self.u32(dir_list)
        if n is None:
            return False
        self.n_directories = n
        for i in range(n):
            d = self.u32(dir_list + 4 + 4 * i)
            if d is None or not self.string(d):
                return False
        n = self.u32(hash_offset)
        if n is None:
            return False
        for i in range(n):
            head = self.u32(hash_offset + 4 + 4 * i)
            if head is None:
                return False
            if head != NO_OFFSET and not self.icon(head):
                return False
        return True


def validate(data: bytes) -> bool:
    """``_gtk_icon_cache_validate`` on a whole cache file as the program maps it.

    Raises :class:`NotImplementedError` where the real check needs gdk-pixbuf (pixel data) or
    would not terminate; the caller turns that into a deferral.
    """
    return _Validator(data).run()
