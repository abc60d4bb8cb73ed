"""An image: the disk (qcow2 or raw), its partitions, and the root filesystem found in them.

:class:`Image` ties the layers together for the commands and for library users
(``nuwa.open``)::

    disk file --detect.open_disk--> BlockDevice --read_partitions--> partitions (slices)
        --sniff--> what each holds --open_ext4--> the root FileSystem

The root filesystem is the ext2/3/4 filesystem that holds both ``/etc/os-release`` and
``/var/lib/dpkg`` (DESIGN.md, "The command line"); ``partition=N`` names it instead. A disk
without a partition table is taken to be a bare filesystem.
"""

from __future__ import annotations

import os

from nuwa.errors import CorruptImageError, InvalidInputError, NuwaError, UnsupportedFeatureError
from nuwa.formats.blockdev import BlockDevice
from nuwa.formats.detect import open_disk
from nuwa.formats.partitions import Partition, PartitionTable, read_partitions
from nuwa.formats.sniff import FsSignature, sniff
from nuwa.fs.ext4 import open_ext4

EXT_TYPES = ("ext2", "ext3", "ext4")
#: what a root filesystem could be but Nuwa cannot read (named in errors)
UNSUPPORTED_FS = ("xfs", "btrfs", "LVM2_member", "crypto_LUKS")
#: the files whose presence marks the root filesystem of a Debian-like system
ROOT_MARKERS = ("/etc/os-release", "/var/lib/dpkg")
#: the os-release keys ``info()`` reports
OS_RELEASE_KEYS = ("ID", "VERSION_ID", "PRETTY_NAME", "VERSION_CODENAME", "NAME", "VERSION", "ID_LIKE")
#: larger os-release files are not read (the real ones are well under 1 KiB)
OS_RELEASE_MAX = 64 * 1024


def _shell_word(value: str) -> str:
    """Unquote one shell word the way ``sh`` does for an assignment (no expansion).

    os-release(5) values are shell words: '...' is literal, "..." allows backslash escapes of
    ``$ ` " \\`` (a backslash before anything else stays), and an unquoted backslash quotes the
    next character. Parsing stops at unquoted whitespace (what follows is not part of the value).
    """
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "'":
            end = value.find("'", i + 1)
            end = n if end < 0 else end
            out.append(value[i + 1 : end])
            i = end + 1
        elif ch == '"':
            i += 1
            while i < n and value[i] != '"':
                if value[i] == "\\" and i + 1 < n and value[i + 1] in '$`"\\':
                    i += 1
                out.append(value[i])
                i += 1
            i += 1
        elif ch == "\\" and i + 1 < n:
            out.append(value[i + 1])
            i += 2
        elif ch in " \t":
            break
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def read_os_release(fs) -> dict:
    """``/etc/os-release`` (else ``/usr/lib/os-release``) of the filesystem ``fs``, parsed
    (:func:`parse_os_release`; the first ``OS_RELEASE_MAX`` bytes); ``{}`` when neither is a file."""
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            with fs.open(path, "rb") as f:
                data = f.read(OS_RELEASE_MAX)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        return parse_os_release(data.decode("utf-8", errors="replace"))
    return {}


def parse_os_release(text: str) -> dict:
    """Parse os-release(5): ``KEY=value`` lines, values shell-quoted, ``#`` comments.

    Lines that are not assignments are ignored, as systemd's parser does.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if not key or not key.replace("_", "").isalnum() or key[0].isdigit():
            continue
        out[key] = _shell_word(value)
    return out


class Volume:
    """A place a filesystem can live: one partition, or the whole disk (``number`` None)."""

    def __init__(self, device: BlockDevice, partition: Partition | None):
        self.device = device
        self.partition = partition
        self._signature: FsSignature | None | bool = False  # False: not sniffed yet

    @property
    def number(self) -> int | None:
        """The partition number, or None for the whole disk."""
        return self.partition.number if self.partition else None

    @property
    def label(self) -> str:
        """How error messages name this volume."""
        return f"partition {self.number}" if self.partition else "the whole disk"

    @property
    def signature(self) -> FsSignature | None:
        """What the volume holds (sniffed once)."""
        if self._signature is False:
            self._signature = sniff(self.device) if self.device.size else None
        return self._signature


class Image:
    """An opened disk image. Use :meth:`open` (or ``nuwa.open``); close it, or use ``with``."""

    def __init__(self, path: str, device: BlockDevice, table: PartitionTable, writable: bool,
                 partition: int | None = None):
        self.path = path
        self.device = device
        self.table = table
        self.writable = writable
        self.partition = partition
        if table.scheme is None:
            self.volumes = [Volume(device, None)]
        else:
            self.volumes = [Volume(p.device, p) for p in table.partitions if p.kind != "extended"]
        self._root = None
        #: in-place jobs may write a filesystem without a journal (not crash-safe)
        self.unsafe_in_place = False
        #: write the root filesystem through its journal (crash-atomic flushes); a new
        #: ``--output`` overlay turns it off: its file is published only when complete
        self.journal_writes = True
        self._root_volume: Volume | None = None
        #: why ``info()`` could not describe the root filesystem (None if it could)
        self.root_error: NuwaError | None = None
        self._closed = False

    @classmethod
    def open(cls, path, writable: bool = False, partition: int | None = None,
             unsafe_in_place: bool = False) -> "Image":
        """Open the disk image at ``path``; the root filesystem is opened on first use.

        ``partition`` names the partition holding the root filesystem (1-based, as Linux
        numbers them); an unknown number is an :class:`InvalidInputError` here, not later.
        ``unsafe_in_place`` lets in-place jobs write a filesystem without a journal (not
        crash-safe; see docs/limitations.md).
        """
        path = os.fspath(path)
        device = open_disk(path, writable=writable)
        try:
            table = read_partitions(device)
            image = cls(path, device, table, writable, partition)
            image.unsafe_in_place = unsafe_in_place
            if partition is not None:
                image._volume_numbered(partition)
        except BaseException:
            device.close()
            raise
        return image

    # --- structure ---------------------------------------------------------------------

    @property
    def partitions(self) -> list[Partition]:
        """The partitions of the disk (empty for a bare filesystem), extended ones included."""
        return list(self.table.partitions)

    @property
    def format(self) -> str:
        """'qcow2' or 'raw'."""
        return getattr(self.device, "format", "raw")

    def _volume_numbered(self, number: int) -> Volume:
        for vol in self.volumes:
            if vol.number == number:
                return vol
        if self.table.scheme is None:
            raise InvalidInputError(f"--partition {number}: the disk has no partition table", where=self.path)
        if any(p.number == number for p in self.table.partitions):
            raise InvalidInputError(f"--partition {number} is an extended partition (a container of logical ones)",
                                    where=self.path)
        have = ", ".join(str(p.number) for p in self.table.partitions if p.kind != "extended") or "none"
        raise InvalidInputError(f"--partition {number} does not exist (partitions: {have})", where=self.path)

    # --- the root filesystem -------------------------------------------------------------

    def root_volume(self) -> Volume:
        """The volume holding the root filesystem (found on first call)."""
        if self._root_volume is None:
            if self.partition is not None:
                vol = self._volume_numbered(self.partition)
                sig = vol.signature
                if sig is None or sig.type not in EXT_TYPES:
                    what = sig.type if sig else "no recognisable filesystem"
                    message = f"--partition {vol.number} holds {what}; Nuwa reads ext2/ext3/ext4 only"
                    if what in UNSUPPORTED_FS:  # a real root filesystem Nuwa cannot handle
                        raise UnsupportedFeatureError(message, where=self.path, feature=what)
                    raise InvalidInputError(message, where=self.path)  # swap, vfat, nothing: wrong number
                self._root_volume = vol
            else:
                self._root_volume = self._find_root()
        return self._root_volume

    def _find_root(self) -> Volume:
        reasons: list[str] = []
        first_error: NuwaError | None = None
        n_errors = 0
        others: list[str] = []
        for vol in self.volumes:
            sig = vol.signature
            if sig is None:
                continue
            if sig.type not in EXT_TYPES:
                if sig.type in UNSUPPORTED_FS:
                    others.append(f"{vol.label} holds {sig.type}, which Nuwa cannot read")
                continue
            try:
                # A writable session may find the root through a journal that needs replay or
                # pending orphans: it only looks for two paths here, and the writable open that
                # follows replays, processes or refuses properly. Read-only sessions stay strict.
                fs = open_ext4(vol.device, writable=False, forensic=self.writable)
            except NuwaError as err:
                first_error = first_error or err
                n_errors += 1
                reasons.append(f"{vol.label} ({sig.type}): {err}")
                continue
            try:
                missing = [m for m in ROOT_MARKERS if not _present(fs, m)]
            except NuwaError as err:  # damage on the way to a marker: as a damaged candidate
                first_error = first_error or err
                n_errors += 1
                reasons.append(f"{vol.label} ({sig.type}): {err}")
                continue
            finally:
                fs.close()
            if not missing:
                return vol
            reasons.append(f"{vol.label} ({sig.type}) has no {' and no '.join(missing)}")
        if first_error is not None and n_errors == len(reasons):
            raise first_error  # every candidate is damaged: say so, with the error's own exit code
        detail = "; ".join(reasons + others) or "no ext2/ext3/ext4 filesystem on the disk"
        message = f"no root filesystem found (an ext filesystem holding {' and '.join(ROOT_MARKERS)}): {detail}"
        if isinstance(first_error, (CorruptImageError, UnsupportedFeatureError)):
            # A damaged candidate is most likely the root itself: keep the image's fault (exit 3).
            raise type(first_error)(message, where=self.path)
        raise InvalidInputError(message, where=self.path)

    def root(self):
        """The root filesystem as a :class:`nuwa.fs.model.FileSystem`, writable iff the image is."""
        if self._closed:
            raise InvalidInputError("the image is closed", where=self.path)
        if self._root is None:
            vol = self.root_volume()
            self._root = open_ext4(vol.device, writable=self.writable, journal=self.journal_writes)
        return self._root

    def os_release(self) -> dict:
        """The root filesystem's ``/etc/os-release`` (or ``/usr/lib/os-release``), parsed."""
        return read_os_release(self.root())

    # --- info ----------------------------------------------------------------------------

    def info(self) -> dict:
        """Everything ``nuwa info --json`` prints: disk, partitions, filesystems, root fs, OS."""
        disk = self.device.info() if hasattr(self.device, "info") else {
            "format": self.format, "filename": self.path, "virtual_size": self.device.size}
        out = dict(disk)
        out["image"] = self.path
        out["partition_table"] = {
            "scheme": self.table.scheme,
            "sector_size": self.table.sector_size if self.table.scheme else None,
            "disk_id": self.table.disk_id or None,
            "warnings": list(self.table.warnings),
        }
        parts = []
        for p in self.table.partitions:
            vol = next((v for v in self.volumes if v.partition is p), None)
            sig = vol.signature if vol else None
            parts.append({
                "number": p.number, "kind": p.kind, "start": p.start, "end": p.end, "size": p.size,
                "offset": p.offset, "length": p.length,
                "type": p.type if isinstance(p.type, str) else f"0x{p.type:02x}", "type_name": p.type_name,
                "name": p.name, "uuid": p.uuid, "bootable": p.bootable,
                "filesystem": sig.as_dict() if sig else None,
            })
        out["partitions"] = parts
        if self.table.scheme is None:
            sig = self.volumes[0].signature
            out["filesystem"] = sig.as_dict() if sig else None
        out["root"] = self._root_info()
        return out

    def _root_info(self) -> dict:
        try:
            vol = self.root_volume()
            fs = self.root()
        except NuwaError as err:
            self.root_error = err
            return {"error": str(err)}
        sig = vol.signature
        fsinfo = fs.info() if hasattr(fs, "info") else {}
        root = {
            "partition": vol.number,
            "type": sig.type,  # the blkid-compatible name, as in the partition listing
            "label": fsinfo.get("label", sig.label),
            "uuid": fsinfo.get("uuid", sig.uuid),
            "features": fsinfo.get("features", []),
            "filesystem": fsinfo,
        }
        try:
            rel = self.os_release()
        except (NuwaError, OSError) as err:
            root["os"] = {"error": str(err)}
        else:
            root["os"] = {k.lower(): rel[k] for k in OS_RELEASE_KEYS if k in rel}
        return root

    # --- life cycle ----------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything pending in the root filesystem and the disk."""
        if self._root is not None:
            self._root.flush()
        self.device.flush()

    def abandon(self) -> None:
        """Give up a failed in-place job: the root filesystem drops what it has pending and
        writes nothing more (with a journal the image stays as it was before the job)."""
        if self._root is not None and hasattr(self._root, "abandon"):
            self._root.abandon()

    def close(self) -> None:
        """Close the root filesystem (if opened) and the disk; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._root is not None:
                self._root.close()
        finally:
            self._root = None
            self.device.close()

    def __enter__(self) -> "Image":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = "rw" if self.writable else "ro"
        return f"<Image {self.path!r} {self.format} {self.table.scheme or 'no partition table'} {mode}>"


def _present(fs, path: str) -> bool:
    """Whether ``path`` resolves in ``fs``; damage met on the way (an inode of no file type, an
    entry to an unused inode) is raised, not taken for a missing path (``exists`` would)."""
    try:
        fs.stat(path)
        return True
    except (CorruptImageError, UnsupportedFeatureError):
        raise
    except OSError:
        return False
