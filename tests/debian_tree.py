"""Real Debian material for differential tests: an outdated bookworm minbase tree.

Built once per day with ``mmdebstrap --mode=root --variant=minbase`` from the mirror named in
the machine's apt sources (DESIGN.md, "How to make real material") and cached under
``/var/tmp/nuwa-trees``. Tests copy it (``copy_tree``) before changing anything.
"""

from __future__ import annotations

import atexit
import datetime
import fcntl
import os
import shutil
import stat
import subprocess
import sys

import pytest

from judges import tool

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import host_mirrors  # noqa: E402

CACHE = "/var/tmp/nuwa-trees"
#: Debian architecture -> qemu-user's name for it (its binfmt_misc entry is qemu-NAME)
QEMU_NAMES = {"arm64": "aarch64", "armhf": "arm", "i386": "i386", "ppc64el": "ppc64le",
              "s390x": "s390x", "riscv64": "riscv64", "amd64": "x86_64"}


def debian_mirror() -> str:
    """The Debian mirror URI from the machine's apt sources (tools/host_mirrors.py); without
    one, the test fails under CI and is skipped elsewhere, saying why."""
    try:
        return host_mirrors.mirrors()[0]
    except host_mirrors.NoMirror as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))
        pytest.skip(str(e))


def bookworm_tree(extra: tuple[str, ...] = (), arch: str = "amd64") -> str:
    """Path of a cached, read-only-by-convention bookworm minbase tree (root needed to build).

    ``extra`` names packages to ``--include`` (e.g. ``("systemd", "cron")``); each distinct
    set is its own cached tree, keyed by the sorted names and the date. ``arch`` is the
    Debian architecture of the tree (``mmdebstrap --arch``); a foreign one needs
    ``qemu-user-static`` and binfmt_misc enabled (``.ci/run`` sets both up), since its
    maintainer scripts run under emulation.
    """
    if os.geteuid() != 0:
        pytest.skip("building a Debian tree with mmdebstrap --mode=root needs root")
    mmdebstrap = tool("mmdebstrap")
    os.makedirs(CACHE, exist_ok=True)
    stamp = datetime.date.today().isoformat()
    extra = tuple(sorted(set(extra)))
    tag = "minbase" if not extra else "minbase+" + "+".join(extra)
    if arch != "amd64":
        # amd64 keeps its historical name so the trees other tests share stay one cache
        tag = f"{arch}-{tag}"
        # "amd64,i386": a Multi-Arch tree (native first, then dpkg --add-architecture ones);
        # i386 code runs natively on an amd64 host: no handler is registered for it
        for a in arch.split(","):
            if a not in ("amd64", "i386") and not os.path.exists(
                    f"/proc/sys/fs/binfmt_misc/qemu-{QEMU_NAMES.get(a, a)}"):
                msg = f"no binfmt_misc handler for {a} (install qemu-user-static, see .ci/run)"
                if os.environ.get("CI"):
                    pytest.fail(msg)
                pytest.skip(msg)
    # mmdebstrap refuses a target whose name holds ':' (zlib1g:i386) or ','
    tag = tag.replace(":", "_").replace(",", "+")
    path = os.path.join(CACHE, f"bookworm-{tag}-{stamp}")
    # one lock per tree: a slow build (a foreign architecture under emulation) holds up only
    # the runs that need that tree
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isfile(os.path.join(path, "etc/os-release")):
            tmp = path + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            r = subprocess.run(
                [mmdebstrap, "--mode=root", "--variant=minbase", f"--arch={arch}",
                 *([f"--include={','.join(extra)}"] if extra else []), "bookworm", tmp,
                 f"deb {debian_mirror()} bookworm main"],
                capture_output=True, text=True,
            )
            if r.returncode != 0:
                msg = f"mmdebstrap failed (exit {r.returncode}): {r.stderr.strip().splitlines()[-1:]}"
                if os.environ.get("CI"):
                    pytest.fail(msg)
                pytest.skip(msg)
            os.rename(tmp, path)
    return path


def link_tree(src: str, dst: str, without: tuple[str, ...] = ()) -> str:
    """A copy for trees a test only reads or replaces whole files in: :func:`copy_tree`'s
    overlay where it can make one; else one whose files are hard links to ``src``'s
    (``cp -al``), or a full ``cp -a`` copy where links cannot be made (the cache and the
    test's directory on different file systems, e.g. /tmp on tmpfs).

    ``without`` names relative paths left out of the copy: in an overlay copy they are
    whiteouts put in its upper layer before it is mounted (removing files through an overlay
    costs a whiteout made by the kernel per file: seconds for a few hundred), in the others
    they are removed after the copy."""
    if _mounted_copy(src, dst, without):
        return dst
    if subprocess.run(["cp", "-al", src, dst], capture_output=True).returncode != 0:
        shutil.rmtree(dst, ignore_errors=True)
        subprocess.run(["cp", "-a", src, dst], check=True)
    for rel in without:
        remove_path(os.path.join(dst, rel))
    return dst


#: the overlay mounts copy_tree made in this process: mount point -> its layers directory
_COPIES: dict[str, str] = {}
#: and mount point -> its lower layer (the cached tree it copies)
_LOWERS: dict[str, str] = {}


def _overlay_usable() -> bool:
    """Root, a kernel with overlayfs, and not turned off (``NUWA_TEST_COPY=cp``)."""
    if os.geteuid() != 0 or os.environ.get("NUWA_TEST_COPY") == "cp":
        return False
    try:
        with open("/proc/filesystems") as f:
            return any(line.split()[-1:] == ["overlay"] for line in f)
    except OSError:
        return False


#: where the per-day caches of real material live (this module's trees, tools/dpkg_material's,
#: the boot image's): read-only by convention, so a copy may keep reading them
CACHES = "/var/tmp/nuwa-"


def _cached(path: str) -> bool:
    return path.startswith(CACHES) and not any(path == m or path.startswith(m + "/") for m in _COPIES)


def _mounted_copy(src: str, dst: str, without: tuple[str, ...] = ()) -> bool:
    """An overlay copy of ``src`` at ``dst`` when ``src`` is a cached tree and overlays can be
    mounted here; False (nothing made) otherwise."""
    src = os.path.realpath(src)
    return os.path.isdir(src) and _cached(src) and _overlay_usable() and _overlay_copy(
        src, os.path.abspath(dst), without)


def _whiteouts(src: str, upper: str, without: tuple[str, ...]) -> None:
    """Whiteouts (0/0 character devices) in ``upper`` for the paths of ``without`` that
    ``src`` holds, under directories given the lower ones' mode, owner, xattrs and times
    (the merged directory shows the upper one's)."""
    made = set()
    for rel in without:
        rel = os.path.normpath(rel)
        if not os.path.lexists(os.path.join(src, rel)):
            continue
        parts = rel.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d not in made:
                os.mkdir(os.path.join(upper, d))
                made.add(d)
        os.mknod(os.path.join(upper, rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))
    for d in sorted(made, key=len, reverse=True):
        lo, up = os.path.join(src, d), os.path.join(upper, d)
        st = os.lstat(lo)
        os.chown(up, st.st_uid, st.st_gid)
        os.chmod(up, stat.S_IMODE(st.st_mode))
        for n in os.listxattr(lo, follow_symlinks=False):
            os.setxattr(up, n, os.getxattr(lo, n, follow_symlinks=False), follow_symlinks=False)
        os.utime(up, ns=(st.st_atime_ns, st.st_mtime_ns))


def _overlay_copy(src: str, dst: str, without: tuple[str, ...] = ()) -> bool:
    """Mount an overlay at ``dst`` whose lower layer is ``src`` (less ``without``, see
    :func:`link_tree`); False if the kernel refuses."""
    layers = os.path.join(os.path.dirname(dst), "." + os.path.basename(dst) + ".layers")
    if os.path.lexists(dst) or os.path.lexists(layers):
        return False
    upper, work = os.path.join(layers, "upper"), os.path.join(layers, "work")
    os.makedirs(upper)
    os.makedirs(work)
    os.makedirs(dst)
    st = os.lstat(src)  # the merged root is the upper directory: give it the source root's metadata
    os.chown(upper, st.st_uid, st.st_gid)
    os.chmod(upper, st.st_mode & 0o7777)
    _whiteouts(src, upper, without)
    os.utime(upper, ns=(st.st_atime_ns, st.st_mtime_ns))
    opts = f"lowerdir={src},upperdir={upper},workdir={work},index=on,redirect_dir=on"
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, dst], capture_output=True)
    if r.returncode != 0:
        shutil.rmtree(layers, ignore_errors=True)
        os.rmdir(dst)
        return False
    _COPIES[dst] = layers
    if not without:  # (renew_copy's fresh copy would hold the paths left out)
        _LOWERS[dst] = src
    return True


def copy_tree(src: str, dst: str) -> str:
    """A private, writable copy of ``src`` at ``dst`` (ownership, modes, xattrs, hard links).

    As root, an overlay mount whose lower layer is ``src``: nothing is copied until it is
    written (copying a tree's data costs seconds of kernel time a test, and most tests change
    a few files). Hard links stay links when one is written (``index=on``) and directories can
    be renamed (``redirect_dir=on``). ``src`` must not change while the copy lives, so only a
    tree in the per-day caches (:data:`CACHES`, read-only by convention) is copied that way;
    any other source (one a test made, another copy) gets a full ``cp -a``, as does a non-root
    run or a kernel without overlayfs. An existing ``dst`` is replaced. Copies are released by :func:`release_copies` (the ``tmp_path``
    fixture of ``tests/conftest.py`` does it for its directory, the session's end for all).
    """
    src, dst = os.path.realpath(src), os.path.abspath(dst)
    if os.path.lexists(dst):
        remove_tree(dst)
    if not _mounted_copy(src, dst):
        subprocess.run(["cp", "-a", src, dst], check=True)
    return dst


def upper_layer(dst: str) -> str | None:
    """The overlay copy at ``dst``'s upper layer: every change made to the copy since
    :func:`copy_tree` made it (written and new files, copied-up directories, whiteouts for
    removed paths), read-only for callers while the copy is mounted; None when ``dst`` is not
    an overlay copy."""
    layers = _COPIES.get(os.path.abspath(dst))
    return os.path.join(layers, "upper") if layers else None


def renew_copy(src: str, dst: str, paths: list[str]) -> bool:
    """Make the overlay copy of ``src`` at ``dst`` a fresh one (remount it over an empty upper
    layer) when every change it holds is at or below one of ``paths`` (relative), and say so;
    False, and ``dst`` untouched, when it is not an overlay copy or holds a change elsewhere.

    For a harness that puts ``paths`` back to ``src``'s state before each case, this is the
    same reset at the cost of a mount instead of a removal and copy of whole directories:
    everything outside ``paths`` is unchanged (it is the source's already), everything at or
    below them becomes the source's again. A directory on the way to a path is copied up by
    any change below it: it is not a change of its own when its mode, owner and extended
    attributes are the source's and it is neither opaque nor redirected (times aside, which
    removing and copying the paths would change as well)."""
    upper = upper_layer(dst)
    if upper is None or os.path.realpath(src) != _LOWERS.get(os.path.abspath(dst)):
        return False
    paths = {os.path.normpath(p) for p in paths}
    ways = set()  # the directories on the way to the paths (not the root)
    for p in paths:
        while os.path.dirname(p):
            p = os.path.dirname(p)
            ways.add(p)

    def walk(rel: str) -> bool:
        if not _same_dir(os.path.join(upper, rel), os.path.join(src, rel)):
            return False
        for name in os.listdir(os.path.join(upper, rel)):
            sub = os.path.join(rel, name) if rel else name
            if sub not in paths and (sub not in ways or not walk(sub)):
                return False
        return True

    if not walk(""):
        return False
    copy_tree(src, dst)
    return True


def _same_dir(upper: str, lower: str) -> bool:
    """A copied-up directory with the lower one's mode, owner and xattrs, not opaque or redirected."""
    try:
        a, b = os.lstat(upper), os.lstat(lower)
    except FileNotFoundError:
        return False
    if not (stat.S_ISDIR(a.st_mode) and stat.S_ISDIR(b.st_mode)) or \
            (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    xa = {n: os.getxattr(upper, n, follow_symlinks=False) for n in os.listxattr(upper, follow_symlinks=False)}
    if "trusted.overlay.opaque" in xa or "trusted.overlay.redirect" in xa:
        return False
    xa = {n: v for n, v in xa.items() if not n.startswith("trusted.overlay.")}
    xb = {n: os.getxattr(lower, n, follow_symlinks=False) for n in os.listxattr(lower, follow_symlinks=False)}
    return xa == xb


def release_copies(under: str | None = None) -> None:
    """Unmount the overlay copies at or below ``under`` (all when None) and remove their layers;
    the mount points stay, empty, for the caller's own clean-up."""
    under = os.path.abspath(under) if under else None
    for dst in sorted(_COPIES, key=len, reverse=True):
        if under is None or dst == under or dst.startswith(under + "/"):
            if subprocess.run(["umount", dst], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", dst], capture_output=True)
            shutil.rmtree(_COPIES.pop(dst), ignore_errors=True)
            _LOWERS.pop(dst, None)


def remove_path(path: str) -> None:
    """Remove whatever ``path`` is (a directory and what it holds, a file, a symlink), if anything."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


def restore_paths(base: str, root: str, paths: list[str], pristine) -> None:
    """``paths`` (relative) of the copy ``root`` of ``base`` back to what ``pristine`` holds:
    an overlay copy whose changes all lie in them is remounted fresh (:func:`renew_copy`);
    otherwise each is removed and copied back (``cp -a``) where ``pristine`` has it.
    ``pristine`` is a directory, or a function making one, called only when it is needed."""
    if renew_copy(base, root, paths):
        return
    if callable(pristine):
        pristine = pristine()
    for rel in paths:
        p = os.path.join(root, rel)
        remove_path(p)
        src = os.path.join(pristine, rel)
        if os.path.lexists(src):
            subprocess.run(["cp", "-a", src, p], check=True)


def remove_tree(path: str) -> None:
    """``shutil.rmtree`` for a directory that may hold :func:`copy_tree` copies."""
    release_copies(path)
    shutil.rmtree(path)


atexit.register(release_copies)
