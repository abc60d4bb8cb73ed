"""Guards around the image's initramfs builders (initramfs-tools 0.142, dracut).

The initramfs itself is built by the image's own ``/usr/sbin/mkinitramfs``, interpreted by
the simulator with the image's hooks, and the programs they call run as models (``ldd``,
``cpio``, the compressors, ``depmod``/``modprobe``...). What this module adds is the decision
*whether* that can be done offline, taken before anything is changed:

- ``MODULES=dep`` (in ``initramfs.conf`` or a ``conf.d`` file) makes mkinitramfs pick the
  modules of the hardware it runs on (``dep_add_modules`` reads ``/sys``, ``/proc/mounts`` and
  the root device): a dormant image has none, so the build is deferred to the first boot;
- a ``dracut`` call is deferred: dracut is a different builder (bash, its own modules) that
  Nuwa does not simulate.

Everything else -- the configuration, the hooks, ``MODULES=most|list|netboot``, ``COMPRESS``,
``-d``/``-c``/``-l``/``-o``/``-r``/``-k``/``-v`` -- is the image's script's business. It runs as
a child shell of the caller (atomically: any deferred command inside undoes the whole build
and defers the ``mkinitramfs`` call, never leaving a half-written initramfs).
"""

from __future__ import annotations

import posixpath

from nuwa.script.context import Defer, Invocation

#: the configuration mkinitramfs reads before it decides anything, as the script reads it
#: (``mkinitramfs``: ``. "${CONFDIR}/initramfs.conf"``, ``maybe_add_conf`` over both
#: ``conf.d`` directories, ``/etc`` masking ``/usr/share``, then ``conf-hooks.d``); run in the
#: simulator as a child shell, so it sees and costs what the script would
_CONFIG_PROBE = r'''
CONFDIR="$1"
. "${CONFDIR}/initramfs.conf"
maybe_add_conf() {
	if [ -e "$1" ] && basename "$1" | grep '^[[:alnum:]][[:alnum:]\._-]*$' | grep -qv '\.dpkg-.*$'; then
		if ! [ -d "$1" ]; then
			. "$1"
		fi
	fi
}
for i in /usr/share/initramfs-tools/conf.d/*; do
	if ! [ -e "${CONFDIR}"/conf.d/"$(basename "${i}")" ]; then
		maybe_add_conf "${i}"
	fi
done
for i in "${CONFDIR}"/conf.d/*; do
	maybe_add_conf "${i}"
done
for i in /usr/share/initramfs-tools/conf-hooks.d/*; do
	if [ -e "${i}" ] && ! [ -d "${i}" ]; then
		. "${i}"
	fi
done
printf '%s\n' "${MODULES}"
'''


def _confdir(argv: list[str]) -> str:
    """The ``-d CONFDIR`` of a mkinitramfs command line (getopt ``c:d:hl:ko:r:v``)."""
    confdir = "/etc/initramfs-tools"
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            break
        if a.startswith("-") and not a.startswith("--") and len(a) > 1:
            j = 1
            while j < len(a):
                c = a[j]
                if c in "cdlor":
                    val = a[j + 1:] or (argv[i + 1] if i + 1 < len(argv) else "")
                    if not a[j + 1:]:
                        i += 1
                    if c == "d":
                        confdir = val
                    break
                j += 1
        i += 1
    return confdir


def _script_path(inv: Invocation) -> str:
    """Where the shell found the program (the same PATH search, in the image)."""
    name = inv.argv[0]
    if "/" in name:
        return inv.path(name)
    for d in inv.env.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":"):
        p = posixpath.join(d or inv.cwd, name)
        try:
            st = inv.fs.stat(p)
        except (OSError, ValueError):
            continue
        if st.is_reg and st.st_mode & 0o111:
            return p
    raise Defer(f"{name}: not found in the image")


def mkinitramfs(inv: Invocation) -> int:
    """``mkinitramfs [-d CONFDIR] ... -o OUT [VERSION]``: defer ``MODULES=dep``, else run the
    image's script (initramfs-tools 0.142) in the simulator."""
    if inv.run is None:
        raise Defer("mkinitramfs: needs the interpreter to run the image's script")
    path = _script_path(inv)
    confdir = _confdir(inv.argv[1:])
    st, out, _err = inv.run(["/bin/sh", "-c", _CONFIG_PROBE, "mkinitramfs", confdir], b"")
    if st != 0:
        raise Defer(f"mkinitramfs: its configuration in {confdir} could not be read offline")
    modules = out.decode("utf-8", "surrogateescape").rstrip("\n")
    if modules == "dep":
        raise Defer("mkinitramfs: MODULES=dep picks the modules of the running hardware (/sys, /proc/mounts); "
                    "built at first boot")
    st, out, err = inv.run(["/bin/sh", path, *inv.argv[1:]], inv.stdin)
    inv.out(out)
    inv.err(err)
    return st


def dracut(inv: Invocation) -> int:
    """``dracut ...``: this image builds its initramfs with dracut, which is not simulated."""
    raise Defer("dracut: the image builds its initramfs with dracut, which Nuwa does not simulate "
                "(initramfs-tools images are built offline)")
