"""``/var/lib/dpkg/info``: per-package control files, file lists and digests.

dpkg names each file ``info/PKG.TYPE`` or, for ``Multi-Arch: same`` packages once the info
directory is in the multi-arch layout (``info/format`` holds ``1``), ``info/PKG:ARCH.TYPE``
(``lib/dpkg/db-ctrl-access.c``, ``pkg_infodb_get_file``). The ``list`` file holds one
absolute path per line in archive order (root as ``/.``); ``md5sums`` holds
``HASH  path-without-leading-slash`` lines; both are replaced atomically (``*-new`` then
rename), as dpkg's ``atomic_file`` does without backup.
"""

from __future__ import annotations

import errno
import stat as _stat

from nuwa.errors import CorruptImageError

#: control-member types dpkg keeps in the info database (everything without a dot but "control")
SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
#: dpkg's control-area directory under the admindir (``process_archive``'s ``cidir``)
CIDIR = "tmp.ci"


def remove_tree(fs, path: str) -> None:
    """``path_remove_tree``: remove ``path`` whatever it is (missing is fine)."""
    try:
        st = fs.lstat(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return
        raise
    if _stat.S_ISDIR(st.st_mode):
        for n in fs.readdir(path):
            remove_tree(fs, path + "/" + n)
        fs.rmdir(path)
    else:
        fs.unlink(path)


def extract_control_area(fs, admindir: str, members: dict) -> str:
    """The control area at ``ADMINDIR/tmp.ci``, as ``dpkg-deb --control`` extracts it; its path.

    dpkg runs a new package's preinst from there (``process_archive``), and debconf's frontend
    re-executes that path and reads ``tmp.ci/control`` and ``tmp.ci/templates``, so scripts
    must find the same files at the same path. dpkg empties the directory first
    (``ensure_pathname_nonexisting``); the caller removes it when the unpack ends, as
    ``cu_cidir`` does, and the files reach ``info/`` from the archive, not from here.
    """
    cidir = admindir.rstrip("/") + "/" + CIDIR
    remove_tree(fs, cidir)
    fs.mkdir(cidir, 0o755)  # dpkg-deb's mkdir(0777) under dpkg's umask 022
    for name, m in members.items():
        path = f"{cidir}/{name}"
        fs.write_bytes(path, m.data, 0o600)
        fs.chmod(path, m.mode)  # tar restores the archive's modes and times
        fs.utime(path, m.mtime * 10**9, m.mtime * 10**9)
    return cidir


class InfoDB:
    """The info directory of one image (``admindir``/info)."""

    def __init__(self, fs, admindir: str = "/var/lib/dpkg"):
        self.fs = fs
        self.admindir = admindir.rstrip("/")
        self.dir = self.admindir + "/info"
        self._index: dict[str, set[str]] | None = None

    # ---- naming ----------------------------------------------------------------------------
    def format(self) -> int:
        """The layout version in ``info/format`` (0 when absent: single-arch layout)."""
        try:
            text = self.fs.read_bytes(self.dir + "/format").decode().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            raise CorruptImageError(f"info database format {text!r} is not a number", where=self.dir + "/format")
        return int(text)

    def stem(self, name: str, arch: str, multiarch: str) -> str:
        """``PKG`` or ``PKG:ARCH`` as dpkg names this package's info files."""
        if multiarch == "same" and arch and self.format() >= 1:
            return f"{name}:{arch}"
        return name

    def path(self, stem: str, filetype: str) -> str:
        """``/var/lib/dpkg/info/STEM.TYPE``."""
        return f"{self.dir}/{stem}.{filetype}"

    def _build_index(self) -> dict[str, set[str]]:
        if self._index is None:
            idx: dict[str, set[str]] = {}
            try:
                names = self.fs.readdir(self.dir)
            except FileNotFoundError:
                names = []
            for n in names:
                stem, dot, ftype = n.rpartition(".")
                if not dot or not stem:
                    continue
                idx.setdefault(stem, set()).add(ftype)
            self._index = idx
        return self._index

    def filetypes(self, stem: str) -> set[str]:
        """The info file types present for ``stem`` (dpkg ``pkg_infodb_foreach``)."""
        return set(self._build_index().get(stem, set()))

    def has(self, stem: str, filetype: str) -> bool:
        return filetype in self._build_index().get(stem, set())

    # ---- reading ---------------------------------------------------------------------------
    def read(self, stem: str, filetype: str) -> bytes | None:
        """The content of an info file, or None if absent."""
        try:
            return self.fs.read_bytes(self.path(stem, filetype))
        except FileNotFoundError:
            return None

    def read_list(self, stem: str) -> list[str]:
        """The package's file list (``info/STEM.list``) in order; empty if absent."""
        data = self.read(stem, "list")
        if data is None:
            return []
        text = data.decode("utf-8", "surrogateescape")
        out = []
        for i, ln in enumerate(text.split("\n")):
            if ln == "":
                continue
            if not ln.startswith("/"):
                raise CorruptImageError(f"files list line {i + 1} is not an absolute path: {ln[:80]!r}",
                                        where=self.path(stem, "list"))
            if "\0" in ln:  # no path holds a NUL byte: the file is damaged
                raise CorruptImageError(f"files list line {i + 1} holds a NUL byte: {ln[:80]!r}",
                                        where=self.path(stem, "list"))
            out.append(ln.rstrip("/") or "/")
        return out

    def read_md5sums(self, stem: str) -> dict[str, str]:
        """``{"/usr/bin/x": md5}`` from ``info/STEM.md5sums``."""
        data = self.read(stem, "md5sums")
        out: dict[str, str] = {}
        if data is None:
            return out
        for ln in data.decode("utf-8", "surrogateescape").splitlines():
            if not ln.strip():
                continue
            h, _, p = ln.partition("  ")
            if "\0" in p:
                raise CorruptImageError(f"md5sums line holds a NUL byte: {ln[:80]!r}",
                                        where=self.path(stem, "md5sums"))
            out["/" + p.lstrip("/")] = h
        return out

    # ---- writing ---------------------------------------------------------------------------
    def _atomic_write(self, path: str, data: bytes, mode: int = 0o644) -> None:
        new = path + "-new"
        self.fs.write_bytes(new, data, mode)
        self.fs.chmod(new, mode)
        self.fs.rename(new, path)

    def write(self, stem: str, filetype: str, data: bytes, mode: int = 0o644) -> None:
        """Create or replace an info file."""
        self._atomic_write(self.path(stem, filetype), data, mode)
        self._build_index().setdefault(stem, set()).add(filetype)

    def install(self, stem: str, filetype: str, data: bytes, mode: int, mtime_ns: int | None = None) -> None:
        """Put a control member in place (dpkg renames the extracted member into info/)."""
        p = self.path(stem, filetype)
        tmp = p + ".dpkg-new"
        self.fs.write_bytes(tmp, data, mode)
        self.fs.chmod(tmp, mode)
        self.fs.chown(tmp, 0, 0)
        if mtime_ns is not None:
            self.fs.utime(tmp, None, mtime_ns)
        self.fs.rename(tmp, p)
        self._build_index().setdefault(stem, set()).add(filetype)

    def write_list(self, stem: str, paths: list[str]) -> None:
        """Replace the file list (``write_filelist_except``)."""
        self.write(stem, "list", "".join(p + "\n" for p in paths).encode("utf-8", "surrogateescape"))

    def write_md5sums(self, stem: str, hashes: list[tuple[str, str]]) -> None:
        """Replace the digests (``write_filehash_except``): ``HASH  path`` lines."""
        self.write(stem, "md5sums", "".join(f"{h}  {p[1:]}\n" for p, h in hashes).encode("utf-8", "surrogateescape"))

    def remove(self, stem: str, filetype: str) -> bool:
        """Delete one info file; False if it was absent."""
        try:
            self.fs.unlink(self.path(stem, filetype))
        except OSError as e:
            if e.errno != errno.ENOENT:
                raise
            return False
        finally:
            self._build_index().get(stem, set()).discard(filetype)
        return True

    def remove_all(self, stem: str, keep: tuple[str, ...] = ()) -> None:
        """Delete every info file of ``stem`` except the types in ``keep``."""
        for ft in sorted(self.filetypes(stem)):
            if ft not in keep:
                self.remove(stem, ft)
