"""A fleet's images: the list given, where each one's output goes, and what state it is in.

- :func:`read_list` and :func:`gather` turn ``IMAGE...`` and ``--from-file LIST`` into one
  ordered list (a shell expands globs before Nuwa sees them; a list file is read here).
- :func:`output_paths` names one new overlay per input in ``--output-dir DIR``, after the
  input's file name, and refuses a clash (two inputs with one name, an input listed twice, an
  output that would be an input) before anything runs: exit 2, nothing written.
- :func:`state_key` is the *package state* of an image: a digest of every file apt's plan
  depends on (the apt configuration, sources, pins and keys, dpkg's status and architectures,
  apt's auto-installed marks, ``os-release`` for ``--security-only``). Images with one key get
  one plan (docs/fleet.md "Sharing").
- :func:`chain_of` names the file at the bottom of an image's backing chain, and says whether
  the image reads exactly as that file: the images of a fleet that share one bottom (overlays
  of one base) form one effect-reuse group (and, rebased, one family).
- :func:`debs_applied` says whether an image already holds every ``.deb`` of a ``--deb`` run
  (installed, same version): the idempotency check of a re-run.
"""

from __future__ import annotations

import hashlib
import os
import stat

from nuwa.errors import InvalidInputError, NuwaError

#: what the plan of ``--upgrade`` reads from an image (apt's configuration tree, the keyrings a
#: ``signed-by`` names by convention, dpkg's and apt's state, the OS release)
STATE_TREES = ("/etc/apt", "/usr/share/keyrings")
STATE_FILES = ("/var/lib/dpkg/status", "/var/lib/dpkg/arch", "/var/lib/apt/extended_states",
               "/etc/os-release", "/usr/lib/os-release")

#: overlay names get this suffix when the input's name has no ``.qcow2`` of its own
OVERLAY_SUFFIX = ".qcow2"


def read_list(path: str) -> list[str]:
    """Image paths from a list file: one per line; blank lines and ``#`` comments skipped.

    A relative path is relative to the list file's directory (the list can move with its
    images); ``-`` is not special.
    """
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise InvalidInputError(f"cannot read the image list ({e.strerror or e})", where=path) from None
    base = os.path.dirname(os.path.abspath(path))
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            out.append(line if os.path.isabs(line) else os.path.join(base, line))
    return out


def gather(images, from_files=()) -> list[str]:
    """The fleet, in order: ``images`` then every ``--from-file`` list; refuses an empty fleet
    and an image named twice (by its real path: two names of one file would be patched twice)."""
    out = list(images)
    for f in from_files:
        out += read_list(f)
    if not out:
        raise InvalidInputError("no image given (IMAGE... or --from-file LIST)")
    seen: dict[str, str] = {}
    for p in out:
        real = os.path.realpath(p)
        if real in seen:
            raise InvalidInputError(f"image listed twice (also as {seen[real]})", where=p)
        seen[real] = p
    return out


def output_name(image: str) -> str:
    """The overlay's file name for ``image``: its own name, ``.qcow2`` added when missing."""
    name = os.path.basename(os.path.normpath(image))
    return name if name.endswith(OVERLAY_SUFFIX) else name + OVERLAY_SUFFIX


def output_paths(images: list[str], output_dir: str) -> list[str]:
    """One output per image in ``output_dir`` (which must exist), named by :func:`output_name`.

    Refused (exit 2) before anything runs: two inputs that would get one output name, and an
    output that is one of the inputs. An output that already exists is *not* refused here: a
    re-run finds it and checks it (docs/fleet.md "Re-running").
    """
    if not os.path.isdir(output_dir):
        raise InvalidInputError("the output directory does not exist", where=output_dir)
    inputs = {os.path.realpath(p) for p in images}
    taken: dict[str, str] = {}
    out = []
    for p in images:
        target = os.path.join(output_dir, output_name(p))
        if target in taken:
            raise InvalidInputError(f"two images would be written to one output {target!r} "
                                    f"(also {taken[target]}); rename one or use separate runs", where=p)
        if os.path.realpath(target) in inputs:
            raise InvalidInputError(f"the output {target!r} would overwrite an input image", where=p)
        taken[target] = p
        out.append(target)
    return out


def _feed_tree(fs, top: str, h) -> None:
    """Every entry below ``top`` (sorted, symlinks not followed): name, type, mode and content."""
    try:
        names = sorted(fs.listdir(top))
    except (FileNotFoundError, NotADirectoryError):
        h.update(f"absent {top}\n".encode())
        return
    for name in names:
        path = top.rstrip("/") + "/" + name
        st = fs.lstat(path)
        h.update(f"{path}\0{st.st_mode:o}\0".encode("utf-8", "surrogateescape"))
        if stat.S_ISDIR(st.st_mode):
            _feed_tree(fs, path, h)
        elif stat.S_ISLNK(st.st_mode):
            h.update(fs.readlink(path).encode("utf-8", "surrogateescape"))
        elif stat.S_ISREG(st.st_mode):
            h.update(hashlib.sha256(fs.read_bytes(path)).digest())
        h.update(b"\n")


def state_key(fs, salt: str = "") -> str:
    """The package state of the root filesystem ``fs``: hex SHA-256 of :data:`STATE_TREES` and
    :data:`STATE_FILES` (``salt`` adds what the run asked: the request, the options)."""
    h = hashlib.sha256(salt.encode("utf-8", "surrogateescape") + b"\n")
    for top in STATE_TREES:
        _feed_tree(fs, top, h)
    for path in STATE_FILES:
        try:
            data = fs.read_bytes(path)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            h.update(f"absent {path}\n".encode())
            continue
        h.update(f"{path}\0".encode() + hashlib.sha256(data).digest() + b"\n")
    return h.hexdigest()


def debs_applied(installed_rows, archives) -> bool:
    """True when every archive's package is installed (state ``installed``) at its version and
    architecture (``installed_rows``: :func:`nuwa.deb.status.list_packages`)."""
    have = {(r["package"], r["architecture"]): (r["version"], r["state"]) for r in installed_rows}
    for a in archives:
        arch = a.control.get("Architecture", "")
        if have.get((a.package, arch)) != (a.control.get("Version", ""), "installed"):
            return False
    return True


def remove_stale_temporaries(output: str) -> list[str]:
    """Remove ``.NAME.nuwa-*`` files beside ``output``: what a worker killed while writing that
    output left (the staging writes there and renames at the very end). The fleet owns the
    output name (clashes were refused), so no other run is writing it."""
    d = os.path.dirname(os.path.abspath(output))
    prefix = f".{os.path.basename(output)}.nuwa-"
    gone = []
    try:
        names = os.listdir(d)
    except OSError:
        return gone
    for n in names:
        if n.startswith(prefix):
            try:
                os.unlink(os.path.join(d, n))
                gone.append(n)
            except FileNotFoundError:
                pass
    return gone


def chain_of(path: str):
    """``(bottom, untouched)``: the real path of the bottom of ``path``'s backing chain (the
    file itself for a raw image or a qcow2 without one), and whether every layer above it is
    empty (it reads as its bottom does: ``BlockDevice.content_identity``); ``(None, False)``
    when the image cannot be opened (its task will say why)."""
    from nuwa.formats.detect import open_disk  # (late: only a fleet run asks)

    try:
        dev = open_disk(path)
    except (NuwaError, OSError):
        return None, False
    try:
        chain = dev.backing_chain() if hasattr(dev, "backing_chain") else []
        if not chain:
            return os.path.realpath(path), False
        identity = dev.content_identity()
        return os.path.realpath(chain[-1]["path"]), identity is not None and identity[0] == "overlay"
    finally:
        dev.close()
