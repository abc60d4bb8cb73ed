"""The download cache: files stored under their SHA-256, shared by every image and every run.

Layout below the root (``$XDG_CACHE_HOME/nuwa``, else ``~/.cache/nuwa``, or ``--cache DIR``)::

    sha256/ab/ab12...ef     one verified object per content hash (a .deb, a Packages.xz, ...)
    named/<key>             a reference (the hex SHA-256 of an object) for verified metadata
                            that callers look up by name (an InRelease per URI and suite)
    partial/<sha256>.part   the bytes of an interrupted download, kept to resume it with Range
    locks/<sha256>.lock     flock(2) files: one process at a time fills one object's .part
    tmp/                    files being written; renamed into place when complete

Why it is safe with two runs at once, and never serves an unverified file:

- an object is written to ``tmp/`` first, hashed, and only then renamed (``rename(2)`` is
  atomic within one filesystem) to its hash name, so a reader sees either nothing or a whole,
  verified file; two writers of the same object write the same bytes, and the last rename wins;
- reading re-hashes the object every time (a 50 MB .deb costs ~30 ms; a per-process memo of
  inode/mtime would miss bit rot, which changes neither), so a file damaged on disk is
  detected, removed and fetched again, never served;
- a ``.part`` file is appended to by the process holding that object's lock only (see
  :meth:`Cache.lock`), and is never served: it becomes an object only through
  :meth:`Cache.put_file`, which hashes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import time
import urllib.parse
from contextlib import contextmanager
from typing import Iterator

from nuwa.errors import InvalidInputError, OperationFailedError, RepositoryError

_HEX64 = re.compile(r"[0-9a-f]{64}")

#: temporary files older than this are left-overs of a killed run and are removed on open
STALE_TMP_SECONDS = 24 * 3600

_CHUNK = 1 << 20


def default_cache_root(environ=None) -> str:
    """The default cache directory: ``$XDG_CACHE_HOME/nuwa``, else ``~/.cache/nuwa``.

    As the XDG base-directory specification says, a relative ``XDG_CACHE_HOME`` is ignored.
    """
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME", "")
    if not base or not os.path.isabs(base):
        home = env.get("HOME") or os.path.expanduser("~")
        base = os.path.join(home, ".cache")
    return os.path.join(base, "nuwa")


def sha256_file(path: str) -> str:
    """Hex SHA-256 of a whole file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_hash(sha256: str) -> str:
    sha = sha256.lower()
    if not _HEX64.fullmatch(sha):
        raise InvalidInputError(f"not a SHA-256 digest: {sha256!r}")
    return sha


class Cache:
    """A content-addressed store of verified files below ``root`` (created when missing)."""

    def __init__(self, root: str | None = None):
        self.root = os.path.abspath(root if root is not None else default_cache_root())
        try:
            for sub in ("sha256", "named", "partial", "locks", "tmp"):
                os.makedirs(os.path.join(self.root, sub), exist_ok=True)
        except OSError as e:
            raise InvalidInputError(f"cache directory {self.root}: {e.strerror}") from None
        self._clean_tmp()

    # -- objects ---------------------------------------------------------------------------

    def path(self, sha256: str) -> str:
        """Where the object with this digest lives (it may not exist)."""
        sha = _check_hash(sha256)
        return os.path.join(self.root, "sha256", sha[:2], sha)

    def has(self, sha256: str) -> bool:
        """Whether an object with this digest is stored (not re-hashed: see :meth:`verified_path`)."""
        return os.path.isfile(self.path(sha256))

    def verified_path(self, sha256: str, size: int | None = None) -> str | None:
        """The object's path if it is stored and its content still has this digest (and
        ``size``); a damaged object is removed and ``None`` returned, so it is fetched again."""
        p = self.path(sha256)
        sha = _check_hash(sha256)
        try:
            fd = os.open(p, os.O_RDONLY)
        except FileNotFoundError:
            return None
        except OSError as e:
            raise OperationFailedError(f"cache object {p}: {e.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if size is not None and st.st_size != size:
                self._discard(p, st)
                return None
            h = hashlib.sha256()
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                h.update(chunk)
            if h.hexdigest() != sha:
                self._discard(p, st)
                return None
        return p

    def read(self, sha256: str, size: int | None = None) -> bytes | None:
        """The object's bytes if stored and intact (see :meth:`verified_path`), else ``None``."""
        sha = _check_hash(sha256)
        p = self.path(sha)
        try:
            with open(p, "rb") as f:
                data = f.read()
                st = os.fstat(f.fileno())
        except FileNotFoundError:
            return None
        except OSError as e:
            raise OperationFailedError(f"cache object {p}: {e.strerror}") from None
        if (size is not None and len(data) != size) or hashlib.sha256(data).hexdigest() != sha:
            self._discard(p, st)
            return None
        return data

    def put_file(self, tmp_path: str, sha256: str, size: int | None = None, *, where: str = "") -> str:
        """Verify ``tmp_path`` (digest, and ``size`` when given) and move it to its hash name.

        ``tmp_path`` must be on the cache's filesystem (use :meth:`tmp_file` or a ``.part``
        path); it is consumed either way: renamed when it matches, removed when it does not,
        and then a :class:`RepositoryError` names ``where`` (the URL) and the mismatch.
        """
        sha = _check_hash(sha256)
        label = where or tmp_path
        try:
            st = os.stat(tmp_path)
            if size is not None and st.st_size != size:
                raise RepositoryError(f"{label}: size mismatch (got {st.st_size} bytes, expected {size})")
            got = sha256_file(tmp_path)
            if got != sha:
                raise RepositoryError(f"{label}: SHA256 mismatch (got {got}, expected {sha})")
            return self._install(tmp_path, sha)
        except BaseException:
            _unlink_quietly(tmp_path)
            raise

    def put_bytes(self, data: bytes, sha256: str | None = None, *, where: str = "") -> str:
        """Store ``data`` (checked against ``sha256`` when given) and return its path."""
        got = hashlib.sha256(data).hexdigest()
        if sha256 is not None and got != _check_hash(sha256):
            raise RepositoryError(f"{where or 'data'}: SHA256 mismatch (got {got}, expected {sha256.lower()})")
        p = self.path(got)
        if self.verified_path(got, len(data)) is not None:
            return p
        tmp = self.tmp_file()
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except OSError as e:
            _unlink_quietly(tmp)
            raise OperationFailedError(f"cache file {tmp}: {e.strerror}") from None
        try:
            return self._install(tmp, got)
        except BaseException:
            _unlink_quietly(tmp)
            raise

    def _install(self, tmp_path: str, sha: str) -> str:
        dest = self.path(sha)
        try:
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            # readable by every user sharing the cache; mkstemp makes 0600 files
            os.chmod(tmp_path, 0o644)
            os.replace(tmp_path, dest)
        except OSError as e:
            raise OperationFailedError(f"cache object {dest}: {e.strerror}") from None
        return dest

    def _discard(self, path: str, st: os.stat_result) -> None:
        # remove the damaged file only if the path still names the inode that was checked:
        # another run may have just renamed a good copy into place
        try:
            now = os.stat(path)
            if (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                os.unlink(path)
        except OSError:
            pass

    # -- named metadata --------------------------------------------------------------------

    def _named_path(self, key: str) -> str:
        name = urllib.parse.quote(key, safe="")
        if len(name) > 200 or name in ("", ".", ".."):
            # file names are limited to 255 bytes; a long key is named by its digest
            name = "~" + hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()
        return os.path.join(self.root, "named", name)

    def put_named(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, for callers that have verified it (a signed InRelease).

        The bytes go to the object store; ``named/<key>`` holds their digest, so a damaged
        copy is caught by the same check as every object.
        """
        sha = hashlib.sha256(data).hexdigest()
        self.put_bytes(data, sha)
        tmp = self.tmp_file()
        try:
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{sha} {len(data)}\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, self._named_path(key))
        except OSError as e:
            _unlink_quietly(tmp)
            raise OperationFailedError(f"cache entry {self._named_path(key)}: {e.strerror}") from None

    def get_named(self, key: str) -> bytes | None:
        """The bytes last stored under ``key``, or ``None`` when absent or damaged."""
        try:
            with open(self._named_path(key), encoding="ascii") as f:
                sha, size = f.read().split()
            return self.read(sha, int(size))
        except FileNotFoundError:
            return None
        except (ValueError, UnicodeDecodeError, InvalidInputError):
            return None  # a damaged reference: as if absent

    # -- partial downloads and locks -------------------------------------------------------

    def partial_path(self, sha256: str) -> str:
        """Where an interrupted download of this object keeps its bytes (never served)."""
        return os.path.join(self.root, "partial", _check_hash(sha256) + ".part")

    @contextmanager
    def lock(self, sha256: str) -> Iterator[None]:
        """Hold the object's lock (``flock``, released by the kernel if the process dies):
        one process at a time downloads one object, the others wait and then find it stored."""
        p = os.path.join(self.root, "locks", _check_hash(sha256) + ".lock")
        try:
            fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OperationFailedError(f"cache lock {p}: {e.strerror}") from None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                    break
                except InterruptedError:
                    continue
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def tmp_file(self) -> str:
        """A new empty file in the cache's ``tmp/`` (same filesystem, so it can be renamed in)."""
        try:
            fd, p = tempfile.mkstemp(prefix=f"{os.getpid()}.", dir=os.path.join(self.root, "tmp"))
        except OSError as e:
            raise OperationFailedError(f"cache directory {self.root}/tmp: {e.strerror}") from None
        os.close(fd)
        return p

    def _clean_tmp(self) -> None:
        # files a killed run left in tmp/; recent ones may belong to a run going on now
        d = os.path.join(self.root, "tmp")
        limit = time.time() - STALE_TMP_SECONDS
        try:
            with os.scandir(d) as it:
                for e in it:
                    try:
                        if e.stat(follow_symlinks=False).st_mtime < limit:
                            os.unlink(e.path)
                    except OSError:
                        pass
        except OSError:
            pass


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass  # already gone, or the cache is read-only: nothing more to undo
