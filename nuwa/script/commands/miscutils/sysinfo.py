"""Models of the programs that ask about the machine: hostname (and dnsdomainname), ischroot,
mountpoint, nproc, logger, wall, stty, tty, kbd_mode.

What "the machine" means offline. A maintainer script run by Nuwa stands in for the same
script run by apt on the booted VM, now. Questions about the *configuration* the VM boots with
are answered from the image: its host name is the first line of ``/etc/hostname`` (what
systemd sets at boot; when cloud-init manages the name, the cloud's metadata decides and the
question is deferred), its names resolve through ``/etc/hosts`` when the image's
``nsswitch.conf`` consults ``files`` first and the name is there (anything else needs DNS at
boot: deferred). Questions about the *running* system get the answer of a machine where the
update is applied before anything else runs: the API filesystems (``/proc``, ``/sys``,
``/dev``, ``/run``, ``/dev/pts``, ``/dev/shm``) and the root are mounted, ``/etc/fstab``'s
automatic entries are mounted, and the script is not in a chroot (``ischroot`` says 1: the
update is applied to the machine itself). What needs the hardware (``nproc``) is deferred.
Messages to a running system's log or terminals (``logger``, ``wall``) are dropped.

Programs and versions: hostname 3.23+nmu1, debianutils 5.7 (ischroot), util-linux 2.38.1
(mountpoint, logger, wall), coreutils 9.1 (nproc), kbd 2.5.1 (kbd_mode: no console offline).
"""

from __future__ import annotations

import dataclasses
import posixpath
import re

from nuwa.script.commands import _args
from nuwa.script.commands.coreutils.paths import canonicalize
from nuwa.script.commands.miscutils.identifiers import getopt_seq
from nuwa.script.context import Defer, Drop, Invocation


# ---- the image's idea of its own name -----------------------------------------------------------

def _read_text(inv: Invocation, path: str) -> str | None:
    try:
        return inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except (OSError, ValueError):
        return None


def boot_hostname(inv: Invocation) -> str:
    """The host name the VM gets at boot: the first non-comment line of ``/etc/hostname``.

    systemd (``read_etc_hostname``) takes the first line that is not empty or a comment,
    stripped. Raises Defer when the image has none (the boot falls back to a compiled-in or
    DHCP name) or when cloud-init may rename the machine from the cloud's metadata.
    """
    text = _read_text(inv, "/etc/hostname")
    name = None
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name = line
            break
    if not name:
        raise Defer("the host name at boot is not in the image (/etc/hostname missing or empty)")
    cloud = _read_text(inv, "/etc/cloud/cloud.cfg")
    if cloud is not None and not re.search(r"(?m)^\s*preserve_hostname:\s*true\b", cloud):
        raise Defer("cloud-init sets the host name at boot from the cloud's metadata")
    return name


def hosts_lookup(inv: Invocation, name: str) -> list[str] | None:
    """The ``/etc/hosts`` line (address, names...) that glibc's ``files`` source answers for
    ``name`` (first line naming it, case-insensitively), or None when it is not there.

    Raises Defer when the answer depends on another source: ``files`` is not the first source
    of the image's ``hosts:`` line (glibc's default without nsswitch.conf is ``dns files``).
    """
    conf = _read_text(inv, "/etc/nsswitch.conf")
    sources: list[str] = []
    for line in (conf or "").splitlines():
        key, sep, rest = line.partition(":")
        if sep and key.strip() == "hosts":
            sources = rest.split("#")[0].split()
    if not sources or sources[0] != "files":
        raise Defer("host name resolution does not start with /etc/hosts (nsswitch.conf hosts:)")
    low = name.lower()
    for line in (_read_text(inv, "/etc/hosts") or "").splitlines():
        f = line.split("#")[0].split()
        if len(f) >= 2 and low in (n.lower() for n in f[1:]):
            return f
    return None


# ---- hostname ----------------------------------------------------------------------------------

_HOSTNAME = _args.spec("aAbdfF:iIsyVh", {
    "alias": "a", "all-fqdns": "A", "boot": "b", "domain": "d", "fqdn": "f", "long": "f", "file": "F",
    "ip-address": "i", "all-ip-addresses": "I", "short": "s", "yp": "y", "nis": "y", "version": "V", "help": "h"})


def hostname(inv: Invocation) -> int:
    """``hostname [-s|-f|-d]``: the name the image boots with; setting it is dropped.

    ``-f``/``-d`` resolve the name as ``getaddrinfo(AI_CANONNAME)`` does through
    ``/etc/hosts``; a name that is not there needs DNS at boot and is deferred. ``-y``
    (``--nis``) prints the kernel's NIS domain: nothing in Debian 12 sets one at boot but the
    NIS client from ``/etc/defaultdomain`` (deferred when that file names one), so the booted
    kernel's default ``(none)`` gives hostname's "Local domain name not set" and status 1.
    ``-a -A -i -I`` (aliases, interfaces) are deferred too.
    """
    try:
        opts, ops = _args.parse(inv, _HOSTNAME)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = [k for k, _ in opts]
    if "F" in keys or ops:
        # sets the running kernel's name only (/etc/hostname is not written)
        raise Drop("sets the running system's host name")
    if "y" in keys and not set(keys) & set("aAiIVh"):
        return _nis_domain(inv)
    if set(keys) & set("aAiIyVh"):
        raise Defer(f"hostname {' '.join(inv.argv[1:])}: needs the running system's interfaces or resolver")
    name = boot_hostname(inv)
    # hostname.c: the last of -s/-f/-d given decides what is shown
    what = next((k for k in reversed(keys) if k in "sfd"), "")
    if what == "s":
        inv.out(name.split(".")[0] + "\n")
        return 0
    if what in ("f", "d"):
        if re.fullmatch(r"[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*", name):
            raise Defer("hostname: a numeric host name")
        hit = hosts_lookup(inv, name)
        if hit is None:
            raise Defer(f"hostname -{what}: {name!r} is not in /etc/hosts; DNS answers at boot")
        fqdn = hit[1]
        if what == "f":
            inv.out(fqdn + "\n")
        else:
            if "." in fqdn:  # hostname.c prints nothing at all for a name without a domain
                inv.out(fqdn.split(".", 1)[1] + "\n")
        return 0
    inv.out(name + "\n")
    return 0


def dnsdomainname(inv: Invocation) -> int:
    """``dnsdomainname`` (hostname's link): hostname.c starts with the DNS domain as its
    output when called by that name, which ``-d`` selects otherwise; options are deferred."""
    if inv.argv[1:]:
        raise Defer(f"dnsdomainname {' '.join(inv.argv[1:])}: options not modelled")
    return hostname(dataclasses.replace(inv, argv=[inv.argv[0], "-d"]))  # the same output buffers


def _nis_domain(inv: Invocation) -> int:
    """``hostname -y``: see :func:`hostname`."""
    if (_read_text(inv, "/etc/defaultdomain") or "").strip():
        raise Defer("hostname --nis: the NIS client sets the domain from /etc/defaultdomain at boot")
    inv.out("hostname: Local domain name not set\n")  # hostname.c prints it to stdout
    return 1


# ---- ischroot ----------------------------------------------------------------------------------

_ISCHROOT = _args.spec("ftVh", {"default-false": "f", "default-true": "t", "version": "V", "help": "h"})


def ischroot(inv: Invocation) -> int:
    """``ischroot [-f|-t]``: 1, not in a chroot (the update is applied to the machine itself).

    On a booted system ischroot compares ``/`` with ``/proc/1/root`` and finds them equal;
    the simulation stands in for that system, so detection succeeds and -f/-t do not matter.
    """
    try:
        opts, ops = _args.parse(inv, _ISCHROOT)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    if any(k in "Vh" for k, _ in opts):
        raise Defer("ischroot --help/--version")
    if inv.env.get("FAKECHROOT") == "true" and "libfakechroot.so" in inv.env.get("LD_PRELOAD", ""):
        return 0  # debianutils: fakechroot's environment counts as a chroot
    return 1


# ---- mountpoint --------------------------------------------------------------------------------

#: mounted on every booted Debian system before any package is configured (systemd's
#: mount_setup() API filesystems, and the root)
_ALWAYS_MOUNTED = {"/", "/proc", "/sys", "/dev", "/run", "/dev/pts", "/dev/shm"}
_MOUNTPOINT = _args.spec("qdxnh", {"quiet": "q", "fs-devno": "d", "devno": "x", "nofollow": "n", "help": "h"})


def _fstab_mounts(inv: Invocation) -> set[str]:
    out = set()
    for line in (_read_text(inv, "/etc/fstab") or "").splitlines():
        f = line.split("#")[0].split()
        if len(f) >= 3 and f[1].startswith("/") and f[2] != "swap" and "noauto" not in (f[3].split(",") if len(f) > 3 else []):
            out.add(posixpath.normpath(f[1]).replace("\\040", " "))
    return out


def _unit_name(path: str) -> str:
    """systemd's path escaping for a mount unit name (``/var/lib/x`` -> ``var-lib-x``)."""
    p = path.strip("/")
    if not p:
        return "-"
    out = []
    for i, c in enumerate(p):
        if c == "/":
            out.append("-")
        elif c.isalnum() and c.isascii() or c in ":_" or (c == "." and i > 0):
            out.append(c)
        else:
            out.append("".join(f"\\x{b:02x}" for b in c.encode()))
    return "".join(out)


def mountpoint(inv: Invocation) -> int:
    """``mountpoint [-q] DIR``: 0 for the root, the API filesystems and /etc/fstab's automatic
    entries, 32 for other directories; mount units the image might start defer; ``-d``/``-x``
    (device numbers of the running system) defer."""
    try:
        opts, ops = _args.parse(inv, _MOUNTPOINT)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    keys = {k for k, _ in opts}
    if keys & set("dxh"):
        raise Defer("mountpoint -d/-x: device numbers of the running system")
    if len(ops) != 1:
        inv.err(f"{inv.name}: bad usage\nTry '{inv.name} --help' for more information.\n")
        return 1
    arg = ops[0]
    path = inv.path(arg)
    quiet = "q" in keys
    try:
        inv.fs.lstat(path) if "n" in keys else inv.fs.stat(path)
    except OSError as e:
        if not quiet:
            inv.err(f"{inv.name}: {arg}: {_strerror(e)}\n")
        return 1
    try:
        canon = path if "n" in keys else canonicalize(inv, path, "e")
    except OSError as e:
        if not quiet:
            inv.err(f"{inv.name}: {arg}: {_strerror(e)}\n")
        return 1
    canon = posixpath.normpath(canon)
    mounted = canon in _ALWAYS_MOUNTED or canon in _fstab_mounts(inv)
    if not mounted:
        unit = _unit_name(canon)
        for d in ("/etc/systemd/system", "/run/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"):
            if inv.fs.exists(f"{d}/{unit}.mount") or inv.fs.exists(f"{d}/{unit}.automount"):
                raise Defer(f"mountpoint {canon}: the image has a mount unit for it")
    if not quiet:
        inv.out(f"{arg} is {'' if mounted else 'not '}a mountpoint\n")
    return 0 if mounted else 32


def _strerror(e: OSError) -> str:
    import os
    return os.strerror(e.errno) if e.errno else str(e)


# ---- nproc, logger, wall -----------------------------------------------------------------------

def nproc(inv: Invocation) -> int:
    """``nproc``: the VM's CPU count is known only when it runs (deferred)."""
    raise Defer("nproc: the number of CPUs of the booted VM is not known offline")


def logger(inv: Invocation) -> int:
    """``logger``: a message to the running system's log; dropped (exit 0 as when logged)."""
    raise Drop("writes to the running system's log")


def wall(inv: Invocation) -> int:
    """``wall``: a message to logged-in users' terminals; dropped."""
    raise Drop("writes to logged-in users' terminals")


# ---- stty --------------------------------------------------------------------------------------

def stty(inv: Invocation) -> int:
    """``stty [SETTINGS]``: a maintainer script's standard input is never a terminal (dpkg run by
    apt, unattended-upgrades or this simulation), so GNU stty fails as it does there: "'standard
    input': Inappropriate ioctl for device", status 1, nothing on stdout. ``-F DEVICE`` (a
    terminal of the running system) and ``--help``/``--version`` defer."""
    for a in inv.argv[1:]:
        if a in ("-F", "--help", "--version") or a.startswith(("--file", "-F")):
            raise Defer(f"stty {a}: a terminal device of the running system")
        if a == "--":
            break
    inv.err("stty: 'standard input': Inappropriate ioctl for device\n")
    return 1


def tty(inv: Invocation) -> int:
    """``tty [-s]``: the standard input is no terminal (see :func:`stty`): "not a tty" on stdout
    (nothing with ``-s``/``--silent``/``--quiet``), status 1, as GNU tty answers."""
    quiet = False
    for a in inv.argv[1:]:
        if a in ("-s", "--silent", "--quiet"):
            quiet = True
        elif a == "--":
            break
        else:
            raise Defer(f"tty {a}: not modelled")
    if not quiet:
        inv.out("not a tty\n")
    return 1


KBD_MODE_USAGE = """Usage: {0} [option...]

This utility reports or sets the keyboard mode.

Options:
  -a, --ascii         set ASCII mode.
  -k, --keycode       set keycode mode.
  -s, --scancode      set scancode mode.
  -u, --unicode       set UTF-8 mode.
  -f, --force         switch the mode even if it makes the keyboard unusable.
  -C, --console=DEV   the console device to be used.
  -V, --version       print version number.
  -h, --help          print this usage message.

Report bugs to authors.

"""
_KBD_LONG = {"ascii": ("a", False), "keycode": ("k", False), "scancode": ("s", False), "unicode": ("u", False),
             "force": ("f", False), "console": ("C", True), "version": ("V", False), "help": ("h", False)}


def kbd_mode(inv: Invocation) -> int:
    """``kbd_mode [-a|-u|-k|-s] [-f] [-C DEV]`` (kbd 2.5.1): options as its ``getopt_long``
    loop takes them (a second mode is a usage error, status 64 = EX_USAGE; ``-h``/``-V`` exit
    at once), then the console: a dormant image has none (no virtual terminal is running, and
    the image's ``/dev`` is filled only at boot), so the answer is the real program's when no
    file descriptor it finds is a console (``getfd``: ``Couldn't open DEV`` for ``-C``), status 1."""
    prog = posixpath.basename(inv.argv[0])  # kbd's set_progname keeps the last component
    usage = KBD_MODE_USAGE.format(prog)
    modes = 0
    console = None
    for ev in getopt_seq(inv, "auskfC:hV", _KBD_LONG):
        if ev[0] == "error":
            inv.err(ev[1] + usage)
            return 64
        if ev[0] == "operands":
            break  # operands are ignored
        key, val = ev[1], ev[2]
        if key in "ausk":
            if modes:
                inv.err(usage)
                return 64
            modes += 1
        elif key == "C":
            console = val
        elif key == "h":
            inv.err(usage)  # usage(EXIT_SUCCESS) writes to stderr as well
            return 0
        elif key == "V":
            inv.out(f"{prog} from kbd 2.5.1\n")
            return 0
    if console is not None:
        inv.err(f"Couldn't open {console}\n")
        return 1
    inv.err("Couldn't get a file descriptor referring to the console.\n")
    return 1
