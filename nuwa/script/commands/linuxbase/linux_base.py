"""linux-base 4.9 (bookworm): ``linux-version``, ``linux-update-symlinks`` and ``linux-check-removal``.

Both are Perl programs over ``DebianLinux.pm``; this module mirrors, function by function,
``version_split``/``version_cmp`` (kernel version ordering, ``-rc``/``-trunk`` pre-releases),
``image_list`` (``glob("/boot/vmlinu[xz]-*")`` in Perl's default case-folded order, detached
``.sig`` files skipped), ``read_kernelimg_conf`` (``/etc/kernel-img.conf``: ``do_symlinks``,
``link_in_boot``, ``image_dest``, the quietly ignored and the warned-about names, with the
same warnings), and ``linux-update-symlinks``' ``update_all`` (the priority list, the
``promote_default`` of existing links, ``File::Spec``'s ``abs2rel``/``rel2abs`` for the link
text). Links are replaced as the program does: a new symlink renamed over the old one, the
``I: ... is now a symlink to ...`` line printed only when the text changes.

``linux-check-removal VERSION`` (every kernel image's prerm) asks a debconf question only
when VERSION is the *running* kernel (``uname -r``) and the program is neither in a chroot nor
in a container. A dormant image runs no kernel at all, so the answer is the one for a version
that is not running: exit 0, nothing printed (the program has no "last kernel" check). Its
``use Debconf::Client::ConfModule`` still runs at compile time, after the usage checks of its
``BEGIN`` block: outside a frontend (no ``DEBIAN_HAS_FRONTEND``) it re-executes the program
under debconf's frontend, which loads and saves the databases around it
(:class:`~nuwa.script.commands.debconf.frontend.FrontendRun`).

Deferred: an image with ``/sbin/restorecon`` (SELinux labels), a link that cannot be made or
renamed (the program dies with a Perl message), relative image paths.
"""

from __future__ import annotations

import functools
import posixpath
import re
import zlib

from nuwa.script.commands.debconf.confmodule import ConfModule
from nuwa.script.commands.debconf.frontend import FRONTEND, FrontendRun
from nuwa.script.context import Defer, Invocation

_SPLIT_RE = re.compile(r"(?:\d+|-?[^-\d]*)")
_PRE_RE = re.compile(r"-(?:rc|trunk)\Z")
_NUM_RE = re.compile(r"\d+")

LINUX_VERSION_USAGE = """Usage: {0} compare KERNEL-VER-1 OP KERNEL-VER-2
       {0} sort [--reverse] [KERNEL-VER-1 KERNEL-VER-2 ...]
       {0} list [--paths]

The version arguments must be kernel version strings as shown by
'uname -r' and used in filenames, not package versions.

The valid comparison operators are: lt le eq ge gt
"""

UPDATE_SYMLINKS_USAGE = """Usage: {0} {{install|upgrade|remove}} KERNEL-VER IMAGE-PATH

This command is intended to be called from the postinst and postrm
maintainer scripts of Linux kernel packages.  The postinst script must
pass the first argument 'install' or 'upgrade' depending on whether a
fresh installation or an upgrade has taken place.

The KERNEL-VER argument must be the kernel version string as shown by
'uname -r' and used in filenames, not the package version.

The IMAGE-PATH argument must be the absolute filename of the kernel
image.
"""


def version_cmp(left_ver: str, right_ver: str) -> int:
    """``DebianLinux::version_cmp``: -1, 0 or 1."""
    lc, rc = _SPLIT_RE.findall(left_ver), _SPLIT_RE.findall(right_ver)
    i = 0
    while True:
        left = lc[i] if i < len(lc) else None
        right = rc[i] if i < len(rc) else None
        lpre = left is not None and bool(_PRE_RE.match(left))
        rpre = right is not None and bool(_PRE_RE.match(right))
        lnum = left is not None and bool(_NUM_RE.match(left))
        rnum = right is not None and bool(_NUM_RE.match(right))
        if lpre or rpre:
            if not rpre:
                return -1
            if not lpre:
                return 1
        if left is None or right is None:
            if right is not None:
                return -1
            return 1 if left is not None else 0
        if lnum and rnum:
            ln, rn = int(_NUM_RE.match(left).group()), int(_NUM_RE.match(right).group())
            if ln != rn:
                return -1 if ln < rn else 1
        else:
            lb, rb = left.encode("utf-8", "surrogateescape"), right.encode("utf-8", "surrogateescape")
            if lb != rb:
                return -1 if lb < rb else 1
        i += 1


def _glob_order(name: str) -> tuple[bytes, bytes]:
    """File::Glob's GLOB_ALPHASORT: ASCII case-folded bytes, then strcmp."""
    b = name.encode("utf-8", "surrogateescape")
    return b.lower(), b


def image_list(inv: Invocation) -> list[list]:
    """``DebianLinux::image_list``: [version, path] of ``/boot/vmlinu[xz]-*`` (not ``*.sig``)."""
    try:
        names = inv.fs.readdir("/boot")
    except OSError:
        return []
    paths = sorted((f"/boot/{n}" for n in names if re.match(r"vmlinu[xz]-", n)), key=_glob_order)
    return [[p[len("/boot/vmlinuz-"):], p] for p in paths if not p.endswith(".sig")]


def read_kernelimg_conf(inv: Invocation, conf_loc: str = "/etc/kernel-img.conf") -> dict:
    """``DebianLinux::read_kernelimg_conf``: the settings, warnings on stderr as Perl prints."""
    bool_param = ("do_symlinks", "link_in_boot", "no_symlinks")
    quiet = ("do_bootloader", "do_initrd", "clobber_modules", "force_build_link", "relink_build_link",
             "relink_src_link", "silent_modules", "warn_reboot")
    conf: dict = {"do_symlinks": 1, "image_dest": "/", "link_in_boot": 0, "no_symlinks": 0}
    try:
        text = inv.fs.read_bytes(conf_loc).decode("utf-8", "surrogateescape")
    except OSError:
        text = None
    if text is not None:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        for lineno, line in enumerate(lines, 1):
            line = re.sub(r"#.*", "", line, count=1)
            if re.fullmatch(r"\s*", line, re.A):
                continue
            m = re.match(r"\s*(\w+)\s*=\s*(.*)", line, re.A)
            if not m:
                inv.err(f"{conf_loc}:{lineno}: W: ignoring line with syntax error\n")
                continue
            name, value = m.group(1).lower(), m.group(2)
            if name in bool_param:
                if re.match(r"(?:no|false|0)\s*\Z", value, re.I | re.A):
                    conf[name] = 0
                elif re.match(r"(?:yes|true|1)\s*\Z", value, re.I | re.A):
                    conf[name] = 1
                else:
                    inv.err(f"{conf_loc}:{lineno}: W: ignoring invalid value for {name}\n")
            elif name == "image_dest":
                pm = re.match(r"(\S*)(.*)", value, re.A)
                conf[name] = pm.group(1)
                if re.search(r"\S", pm.group(2), re.A):
                    inv.err(f"{conf_loc}:{lineno}: W: ignoring excess values for {name}\n")
            elif name not in quiet:
                inv.err(f"{conf_loc}:{lineno}: W: ignoring unknown parameter {name}\n")
    if conf["no_symlinks"]:
        inv.err(f"{conf_loc}: W: ignoring no_symlinks; only symlinks are supported\n")
    del conf["no_symlinks"]
    if conf["link_in_boot"]:
        conf["image_dest"] = "/boot"
    del conf["link_in_boot"]
    return conf


def _program_path(inv: Invocation) -> str:
    """Perl's ``$0`` for a ``#!`` script: the path the shell executed (found through PATH)."""
    a0 = inv.argv[0]
    if "/" in a0:
        return a0
    for d in inv.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = posixpath.join(d or ".", a0)
        try:
            if inv.fs.stat(inv.path(p)).is_reg:
                return p
        except OSError:
            continue
    return a0


def linux_version(inv: Invocation) -> int:
    """``linux-version compare|sort|list``."""
    args = inv.argv[1:]
    usage = LINUX_VERSION_USAGE.format(_program_path(inv))
    if not args:
        inv.err(usage)
        return 2
    command, rest = args[0], args[1:]
    if command == "help" or "--help" in args:
        inv.out(usage)
        return 0
    if command == "compare":
        ops = {"lt": lambda s: s < 0, "le": lambda s: s <= 0, "eq": lambda s: s == 0,
               "ge": lambda s: s >= 0, "gt": lambda s: s > 0}
        if len(rest) != 3 or rest[1] not in ops:
            inv.err(usage)
            return 2
        return 0 if ops[rest[1]](version_cmp(rest[0], rest[2])) else 1
    if command == "sort":
        sign = 1
        if rest and rest[0] == "--reverse":
            sign, rest = -1, rest[1:]
        if rest:
            items = [(v, "\n") for v in rest]
        else:
            text = inv.stdin.decode("utf-8", "surrogateescape")
            items = []
            for line in _lines(text):
                m = re.match(r"([^ \n]*)(.*\n?)\Z", line, re.S)
                items.append((m.group(1), m.group(2)))
        key = functools.cmp_to_key(lambda a, b: version_cmp(a[0], b[0]) * sign)
        for v, tail in sorted(items, key=key):
            inv.out(v + tail)
        return 0
    if command == "list":
        if rest == ["--paths"]:
            paths = True
        elif not rest:
            paths = False
        else:
            inv.err(usage)
            return 2
        for version, path in image_list(inv):
            inv.out(f"{version} {path}\n" if paths else f"{version}\n")
        return 0
    inv.err(usage)
    return 2


def _lines(text: str) -> list[str]:
    """Perl's ``<STDIN>`` lines: split after each "\\n" only."""
    parts = text.split("\n")
    out = [p + "\n" for p in parts[:-1]]
    return out + ([parts[-1]] if parts[-1] else [])


# ---- File::Spec::Unix -----------------------------------------------------------------------
def canonpath(path: str) -> str:
    """``File::Spec::Unix::canonpath``."""
    path = re.sub(r"/{2,}", "/", path)
    path = re.sub(r"(?:/\.)+(?:/|\Z)", "/", path)
    if path != "./":
        path = re.sub(r"\A(?:\./)+", "", path)
    path = re.sub(r"\A/(?:\.\./)+", "/", path, count=1)
    path = re.sub(r"\A/\.\.\Z", "/", path, count=1)
    if path != "/":
        path = re.sub(r"/\Z", "", path, count=1)
    return path


def _dirpart(path: str) -> str:
    """``(File::Spec->splitpath($path))[1]``: everything up to the last slash."""
    i = path.rfind("/")
    return path[: i + 1] if i >= 0 else ""


def rel2abs(path: str, base: str) -> str:
    """``File::Spec::Unix::rel2abs`` with an absolute base."""
    if not path.startswith("/"):
        if not base.startswith("/"):
            raise Defer("linux-update-symlinks: a relative directory is not modelled")
        path = canonpath("/".join([base, path, ""]))
    return canonpath(path)


def abs2rel(path: str, base: str) -> str:
    """``File::Spec::Unix::abs2rel`` for absolute ``path`` and ``base``."""
    path, base = canonpath(path), canonpath(base)
    if not path.startswith("/") or not base.startswith("/"):
        raise Defer("linux-update-symlinks: a relative image path is not modelled")
    pchunks, bchunks = path.split("/"), base.split("/")
    if base == "/":
        if path == "/":
            return path
        return canonpath("/".join(pchunks[1:] + [""]))
    common: list[str] = []
    while pchunks and bchunks and pchunks[0] == bchunks[0]:
        common.append(pchunks.pop(0))
        bchunks.pop(0)
    if not pchunks and not bchunks:
        return "."
    reverse_base: list[str] = []
    for d in bchunks:
        if d != "..":
            reverse_base.insert(0, "..")
            common.append(d)
        elif common:
            if reverse_base and reverse_base[0] == "..":
                reverse_base.pop(0)
                common.pop()
            else:
                reverse_base.insert(0, common.pop())
    return canonpath(canonpath("/".join(reverse_base + pchunks + [""])))


def _image_stem(inv: Invocation) -> str:
    """``image_stem``: vmlinux on mips, parisc and powerpc machines, vmlinuz elsewhere (the
    machine is the image's, told by its dpkg architecture)."""
    arch = ""
    if inv.run is not None:
        status, out, _ = inv.run(["dpkg", "--print-architecture"], b"")
        arch = out.decode().strip() if status == 0 else ""
    if not arch:
        raise Defer("linux-update-symlinks: the image's machine type is unknown")
    return "vmlinux" if re.match(r"(?:mips|hppa|powerpc|ppc)", arch) else "vmlinuz"


class _Links:
    """update_symlink / unlink against the image."""

    def __init__(self, inv: Invocation):
        self.inv = inv
        self.fs = inv.fs

    def update(self, source: str, dest: str) -> None:
        source = abs2rel(source, _dirpart(dest))
        try:
            if self.fs.readlink(dest) == source:
                return
        except OSError:
            pass
        if self.fs.exists("/sbin/restorecon"):
            raise Defer("linux-update-symlinks: SELinux labelling (restorecon) is not modelled")
        tmp = f"{dest}.{zlib.crc32(source.encode()) % 1000000 or 1}"  # like its rand(1000000) suffix
        try:
            if self.fs.lexists(tmp):
                raise Defer(f"linux-update-symlinks: {tmp} is in the way")
            self.fs.symlink(source, tmp)
        except OSError as e:
            raise Defer(f"linux-update-symlinks: a symlink to {source} cannot be made ({e}): the program dies") from None
        try:
            if self.fs.lexists(dest) and self.fs.lstat(dest).is_dir:
                raise IsADirectoryError(21, "Is a directory")
            self.fs.rename(tmp, dest)
        except OSError as e:
            self.fs.unlink(tmp)
            raise Defer(f"linux-update-symlinks: {dest} cannot be replaced ({e}): the program dies") from None
        self.inv.out(f"I: {dest} is now a symlink to {source}\n")

    def unlink(self, path: str) -> None:
        try:
            if not self.fs.lstat(path).is_dir:
                self.fs.unlink(path)
        except OSError:
            pass


def linux_update_symlinks(inv: Invocation) -> int:
    """``linux-update-symlinks install|upgrade|remove VERSION IMAGE-PATH``."""
    args = inv.argv[1:]
    usage = UPDATE_SYMLINKS_USAGE.format(_program_path(inv))
    if not args:
        inv.err(usage)
        return 2
    if args[0] == "help" or "--help" in args:
        inv.out(usage)
        return 0
    if not (args[0] in ("install", "upgrade", "remove") and len(args) == 3):
        inv.err(usage)
        return 2
    change, version, image_path = args
    conf = read_kernelimg_conf(inv)
    if not conf["do_symlinks"]:
        return 0
    default_dir = re.sub(r"/*\Z", "/", conf["image_dest"], count=1)
    stem = _image_stem(inv)
    images = sorted(image_list(inv), key=functools.cmp_to_key(lambda a, b: version_cmp(a[0], b[0])))
    for img in images:
        p = f"/boot/initrd.img-{img[0]}"
        try:
            if inv.fs.stat(p).is_reg:
                img.append(p)
        except OSError:
            pass
    initrd = None if inv.env.get("INITRD") == "No" else f"/boot/initrd.img-{version}"
    for i in range(len(images) + 1):
        diff = version_cmp(version, images[i][0]) if i < len(images) else -1
        if diff == 0:
            if change == "upgrade":
                images[i] = [version, image_path, initrd]
            else:
                del images[i]
            break
        if diff < 0:
            if change == "upgrade":
                images.insert(i, [version, image_path, initrd])
            break
    for link in (f"{default_dir}{stem}.old", f"{default_dir}{stem}"):
        try:
            target = inv.fs.readlink(link)
        except OSError:
            continue
        target = rel2abs(target, _dirpart(link))
        for i, img in enumerate(images):
            if img[1] == target:
                images.append(images.pop(i))
                break
    if change == "install":
        images.append([version, image_path, initrd])
    links = _Links(inv)
    # what would make the program die half-way is refused before any link changes
    if inv.fs.exists("/sbin/restorecon"):
        raise Defer("linux-update-symlinks: SELinux labelling (restorecon) is not modelled")
    for n in (f"{stem}.old", "initrd.img.old", stem, "initrd.img"):
        try:
            if inv.fs.lstat(default_dir + n).is_dir:
                raise Defer(f"linux-update-symlinks: {default_dir + n} is a directory: the program dies")
        except OSError:
            pass
    if images:
        old = images[-2] if len(images) >= 2 else images[-1]
        cur = images[-1]
        links.update(old[1], f"{default_dir}{stem}.old")
        if len(old) > 2 and old[2] is not None:
            links.update(old[2], f"{default_dir}initrd.img.old")
        else:
            links.unlink(f"{default_dir}initrd.img.old")
        links.update(cur[1], f"{default_dir}{stem}")
        if len(cur) > 2 and cur[2] is not None:
            links.update(cur[2], f"{default_dir}initrd.img")
        else:
            links.unlink(f"{default_dir}initrd.img")
    else:
        inv.err("W: Last kernel image has been removed, so removing the default symlinks\n")
        for n in (f"{stem}.old", "initrd.img.old", stem, "initrd.img"):
            links.unlink(default_dir + n)
    return 0


CHECK_REMOVAL_USAGE = """Usage: {0} KERNEL-VER

This command is intended to be called from the prerm maintainer scripts
of Linux kernel packages.

The KERNEL-VER argument must be the kernel version string as shown by
'uname -r' and used in filenames, not the package version.

If the currently running kernel matches KERNEL-VER, linux-check-removal
will normally prompt the user to confirm this potentially dangerous
action and will fail if the user chooses to abort.  However, if the
current environment is in a chroot or container, or if debconf
prompts are disabled, it will always succeed without prompting.
"""


def linux_check_removal(inv: Invocation) -> int:
    """``linux-check-removal KERNEL-VER``: usage checks as the program's ``BEGIN`` block does
    them; then, as no kernel of a dormant image is running, the "not the running kernel" exit."""
    args = inv.argv[1:]
    usage = CHECK_REMOVAL_USAGE.format(_program_path(inv))
    if len(args) != 1:
        inv.err(usage)
        return 2
    if args[0] in ("help", "--help"):
        inv.out(usage)
        return 0
    if not inv.env.get("DEBIAN_HAS_FRONTEND"):
        # Debconf::Client::ConfModule's import: exec "/usr/share/debconf/frontend", $0, @ARGV
        if not inv.fs.exists(FRONTEND):
            raise Defer(f"linux-check-removal: {FRONTEND} is missing (Perl's exec failure is not modelled)")
        inv.env = dict(inv.env, PERL_DL_NONLAZY="1")  # set by the Perl module before the exec
        return _CheckRemovalFrontend(inv).run([_program_path(inv)] + args)
    # $running ne $version: the image's kernels are files in /boot, none of them runs now
    return 0


class _CheckRemovalFrontend(FrontendRun):
    """debconf's frontend started by the program's ``use Debconf::Client::ConfModule``; its
    child, the program again, sends no command: no kernel of the image is running."""

    def run_module(self, qs, fe, owner, argv) -> int:
        """The child: connected, silent, exit 0."""
        cm = ConfModule(qs, fe, owner, read_file=self.read)
        cm.finish()
        return 0
