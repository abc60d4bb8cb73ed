"""``deb-systemd-helper`` (modelled) and ``deb-systemd-invoke`` (dropped), init-system-helpers 1.65.

``/usr/bin/deb-systemd-helper`` is Perl, so it is modelled, never run: this module follows
the script line by line, including its quirks, because maintainer scripts depend on its
exact effects:

- its own ``[Install]`` reader (``get_link_closure``): any line of the file, case-insensitive
  keys, values split on whitespace with one level of quotes removed, ``Also=`` followed
  recursively (a visited list per path), ``DefaultInstance=`` applied to every wants link. Perl's
  capture variables leak into the results and are reproduced: after a quoted ``WantedBy=``
  value, that value and the rest of the line get no ``.wants`` suffix; an ``Alias=`` link is
  named after the whole ``Alias=`` value (or the quote character); a lower-case ``wantedby=``
  gets no suffix;
- the state under ``/var/lib/systemd/deb-systemd-helper-enabled`` (``NAME.dsh-also`` lists
  plus one empty file per link) and ``-masked``, ``--user`` variants;
- ``enable`` runs ``systemctl --root=/ --system --preset-mode=enable-only preset`` (the
  systemctl model) on a first installation when the image has systemctl, then records the
  links without creating them; on later calls it only adds missing links of a unit that still
  has some;
- ``purge`` (or ``_DEB_SYSTEMD_HELPER_PURGE=1``) also drops the state; ``disable`` then removes
  empty state and ``/etc/systemd/{system,user}/*`` directories, as the script does.

Offline choice: ``/dev/null`` is taken to exist (the image's ``/dev`` is a mount point), so
``mask``/``unmask`` see a mask link as the booted system would. ``deb-systemd-invoke`` asks
``policy-rc.d``; Nuwa's policy denies, so it is dropped with the script's "returned 101" exit 0.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re

from nuwa.script.commands.coreutils.paths import find_program
from nuwa.script.commands.services.systemctl import systemctl
from nuwa.script.commands.services.systemd_units import chase, lstat, stat
from nuwa.script.context import Defer, Drop, Invocation

ENABLED = {"system": "/var/lib/systemd/deb-systemd-helper-enabled", "user": "/var/lib/systemd/deb-systemd-user-helper-enabled"}
MASKED = {"system": "/var/lib/systemd/deb-systemd-helper-masked", "user": "/var/lib/systemd/deb-systemd-user-helper-masked"}

_WANTS = re.compile(r"^\s*(WantedBy|RequiredBy)=(.+)$", re.I)
_ALSO = re.compile(r"^\s*Also=(.+)$", re.I)
_ALIAS = re.compile(r"^\s*Alias=(.+)$", re.I)
_DEFAULT = re.compile(r"^\s*DefaultInstance=\s*([\"']?+)(.+)\1\s*$", re.I)
_QUOTED = re.compile(r"^([\"'])(.*)\1$", re.S)
_TEMPLATE = re.compile(r"^(.*@)(\.\w+)$", re.A)


class _Exit(Exception):
    def __init__(self, status: int):
        self.status = status


def perl_split_ws(s: str) -> list[str]:
    """Perl's ``split(/\\s+/, $s)``: a leading empty field kept, trailing ones dropped."""
    parts = re.split(r"\s+", s)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def unquote(value: str) -> tuple[str, str | None]:
    """``$value =~ s/^(["'])(.*)\\g1$/$2/``: (value, the quote when it matched, else None)."""
    m = _QUOTED.match(value)
    return (m.group(2), m.group(1)) if m else (value, None)


class _Helper:
    """One run of deb-systemd-helper."""

    def __init__(self, inv: Invocation, prog: str, instance: str, quiet: bool):
        self.inv = inv
        self.fs = inv.fs
        self.prog = prog
        self.instance = instance
        self.quiet = quiet
        self.enabled_dir = ENABLED[instance]
        self.masked_dir = MASKED[instance]
        self.changed = False
        self.purge = inv.env.get("_DEB_SYSTEMD_HELPER_PURGE", "").strip() == "1"

    # -- Perl file tests on the image
    def _stat(self, path: str):
        path = self.inv.path(path)
        if path == "/dev/null" or (lstat(self.fs, path) is not None and self._target(path) == "/dev/null"):
            return "null"
        return stat(self.fs, path)

    def _target(self, path: str) -> str | None:
        try:
            return chase(self.fs, path, True)
        except Exception:
            return None

    def e(self, path: str) -> bool:
        return self._stat(path) is not None

    def f(self, path: str) -> bool:
        s = self._stat(path)
        return s is not None and s != "null" and s.is_reg

    def d(self, path: str) -> bool:
        s = self._stat(path)
        return s is not None and s != "null" and s.is_dir

    def l(self, path: str) -> bool:  # noqa: E743  (Perl's -l)
        s = lstat(self.fs, self.inv.path(path))
        return s is not None and s.is_lnk

    def error(self, msg: str):
        self.inv.err(f"{self.prog}: error: {msg}\n")
        raise _Exit(1)

    def read_lines(self, path: str) -> list[str] | None:
        """The file's lines, chomped (Perl ``<$fh>`` then ``chomp``), or None if it cannot open."""
        try:
            data = self.fs.read_bytes(self.inv.path(path))
        except (OSError, ValueError):
            return None
        text = data.decode("latin-1")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return lines

    def make_path(self, path: str) -> None:
        """File::Path ``make_path`` (mode 0777 less the umask)."""
        cur = ""
        for c in [x for x in path.split("/") if x]:
            cur += "/" + c
            if lstat(self.fs, cur) is None:
                try:
                    self.fs.mkdir(cur, 0o777 & ~self.inv.umask)
                except OSError:
                    return

    # -- the script's subs
    def find_unit(self, name: str) -> str:
        for d in (f"/etc/systemd/{self.instance}", f"/lib/systemd/{self.instance}", f"/usr/lib/systemd/{self.instance}"):
            if self.f(f"{d}/{name}"):
                return f"{d}/{name}"
        return name

    def state_path(self, name: str) -> str:
        return f"{self.enabled_dir}/{posixpath.basename(name)}.dsh-also"

    def state_entries(self, path: str) -> list[str]:
        return self.read_lines(path) or []

    def record(self, state: str, link: str) -> None:
        """``record_in_statefile``: rewrite through a temporary file, adding ``link`` once."""
        self.make_path(posixpath.dirname(state))
        line = link + "\n"
        old = b""
        if self.e(state):
            try:
                old = self.fs.read_bytes(state)
            except OSError:
                self.error(f"unable to read from {state}")
        lines = [x + "\n" for x in old.decode("latin-1").split("\n")]
        data = old if line in lines[:-1] else old + line.encode("latin-1")
        self._replace(state, data)

    def _replace(self, path: str, data: bytes) -> None:
        tmp = f"{posixpath.dirname(path)}/.stateNUWA0.tmp"
        self.fs.write_bytes(tmp, data, 0o600)
        self.fs.chmod(tmp, 0o644)
        self.fs.rename(tmp, path)

    def touch(self, path: str) -> None:
        """``open(my $fh, '>>', $f)``: create (0666 less the umask) without changing content."""
        try:
            if lstat(self.fs, path) is None or not self.e(path):
                h = self.fs.open_handle(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666 & ~self.inv.umask)
                h.close()
        except OSError:
            self.error(f"Failed to create/touch {path}")

    def closure(self, name: str, service_path: str, visited: list[str]) -> list[tuple[str, str]]:
        """``get_link_closure``: [(dest, src)] in the order the script collects them."""
        links: list[tuple[str, str]] = []
        wants_dirs: list[str] = []
        unit_name = posixpath.basename(service_path)
        wanted = unit_name
        lines = self.read_lines(service_path)
        if lines is None:
            self.error(f"unable to read {service_path}")
        base = f"/etc/systemd/{self.instance}"
        for line in lines:
            m = _WANTS.match(line)
            if m:
                key = m.group(1)  # Perl's $1: the key, until a quote match inside the loop replaces it
                for value in perl_split_ws(m.group(2)):
                    value, quote = unquote(value)
                    key = quote if quote is not None else key
                    w = f"{base}/{value}"
                    if key == "WantedBy":
                        w += ".wants"
                    elif key == "RequiredBy":
                        w += ".requires"
                    wants_dirs.append(w + "/")
            m = _ALSO.match(line)
            if m:
                for value in perl_split_ws(m.group(1)):
                    value, _ = unquote(value)
                    if value != unit_name and value not in visited:
                        visited.append(value)
                        links += self.closure(value, self.find_unit(value), list(visited))
            m = _ALIAS.match(line)
            if m:
                dollar1 = m.group(1)
                for value in perl_split_ws(m.group(1)):
                    value, quote = unquote(value)
                    dollar1 = quote if quote is not None else dollar1
                    if value != unit_name:
                        links.append((service_path, f"{base}/{dollar1}"))
            m = _DEFAULT.match(line)
            if m:
                t = _TEMPLATE.match(unit_name)
                wanted = f"{t.group(1)}{m.group(2)}{t.group(2)}" if t else unit_name
        for w in wants_dirs:
            links.append((service_path, w + wanted))
        return links

    def enable(self, name: str, service_path: str) -> None:
        if self.has_systemctl():
            create = False
            if self.f(self.state_path(name)):
                create = not self.no_link_installed(name, service_path)
            else:
                argv = ["systemctl", "--root=/", "--global" if self.instance == "user" else "--system",
                        "--preset-mode=enable-only", "preset", name]
                sub = Invocation(argv=argv, fs=self.fs, cwd=self.inv.cwd, env=dict(self.inv.env),
                                 umask=self.inv.umask, run=self.inv.run, state=self.inv.state,
                                 models=self.inv.models)
                st = systemctl(sub)
                self.inv.out(bytes(sub.stdout))
                self.inv.err(bytes(sub.stderr))
                if st != 0:
                    # Perl appends $!: still the errno of the failed "-f STATEFILE" test above
                    try:
                        self.fs.stat(self.state_path(name))
                    except OSError as e:
                        self.error(f"systemctl preset failed on {name}: {os.strerror(e.errno or errno.EIO)}")
                    raise Defer(f"deb-systemd-helper: systemctl preset failed on {name} (Perl's $! unknown)")
            self.make_links(name, service_path, create)
        else:
            self.make_links(name, service_path, True)

    def has_systemctl(self) -> bool:
        for p in ("/bin/systemctl", "/usr/bin/systemctl"):
            s = stat(self.fs, p)
            if s is not None and s.is_reg and s.st_mode & 0o111:
                return True
        return False

    def no_link_installed(self, name: str, service_path: str) -> bool:
        return not any(self.l(src) for _, src in self.closure(name, service_path, []))

    def all_links_installed(self, name: str, service_path: str) -> bool:
        return all(self.l(src) for _, src in self.closure(name, service_path, []))

    def make_links(self, name: str, service_path: str, create: bool) -> None:
        """``make_systemd_links``."""
        state = self.state_path(name)
        for dest, src in self.closure(name, service_path, []):
            self.record(state, src)
            prefix = f"/etc/systemd/{self.instance}/"
            statefile = self.enabled_dir + "/" + src[len(prefix):] if src.startswith(prefix) else src
            if self.e(statefile):
                continue
            if create and not self.l(src):
                self.make_path(posixpath.dirname(src))
                try:
                    self.fs.symlink(dest, src)
                except OSError as e:
                    self.error(f"unable to link {src} to {dest}: {os.strerror(e.errno or errno.EIO)}")
                self.changed = True
            self.make_path(posixpath.dirname(statefile))
            self.touch(statefile)

    def update_state(self, name: str, service_path: str) -> None:
        state = self.state_path(name)
        links = self.closure(name, service_path, [])
        self.make_path(posixpath.dirname(state))
        self._replace(state, "".join(src + "\n" for _, src in links).encode("latin-1"))

    def was_enabled(self, name: str) -> bool:
        return all(self.l(link) for link in self.state_entries(self.state_path(name)))

    def remove_links(self, service_path: str, depth: int, seen: list[str]) -> None:
        """``remove_links``; an ``Also=`` cycle recurses in Perl until files can no longer be
        opened: every visit after the first changes nothing, and Perl warns once at depth 100."""
        state = self.state_path(service_path)
        entries = self.state_entries(state)
        if self.purge and self.e(state):
            self._unlink(state)
        prefix = f"/etc/systemd/{self.instance}/"
        for link in entries:
            if self.purge or self.l(link):
                if link.startswith(prefix):
                    self._unlink(self.enabled_dir + "/" + link[len(prefix):])
                else:
                    self._unlink(link)
            if not self.l(link):
                continue
            try:
                self.fs.unlink(self.inv.path(link))
            except OSError as e:
                self.inv.err(f"{self.prog}: unable to remove '{link}': {os.strerror(e.errno or errno.EIO)}\n")
            self.changed = True
        lines = self.read_lines(service_path)
        if lines is None:
            return
        also = [m.group(1) for m in map(_ALSO.match, lines) if m]
        for value in also:
            target = self.find_unit(value)
            if target in seen:
                if len(also) > 1 or self.branching:
                    # Perl re-enters every branch of the cycle until open() fails: exponential
                    raise Defer("deb-systemd-helper: an Also= cycle through a unit with several Also= lines")
                if not self.warned_recursion:
                    self.warned_recursion = True
                    self.inv.err(f"Deep recursion on subroutine \"main::remove_links\" at {self.prog} line "
                                 f"{self.recursion_line()}, <$fh> line {self._line_at_depth_99(seen[0])}.\n")
                continue
            saved = self.branching
            self.branching = self.branching or len(also) > 1
            self.remove_links(target, depth + 1, seen + [target])
            self.branching = saved

    warned_recursion = False
    branching = False

    def recursion_line(self) -> int:
        """The line of the recursive call in the image's own script (for Perl's warning)."""
        try:
            text = self.fs.read_bytes(self.script).decode("latin-1")
        except OSError:
            raise Defer("deb-systemd-helper: an Also= cycle, and the script is not readable") from None
        for n, line in enumerate(text.split("\n"), 1):
            if "remove_links(find_unit(" in line:
                return n
        raise Defer("deb-systemd-helper: an Also= cycle in an unknown script version")

    def _line_at_depth_99(self, top: str) -> int:
        """Perl's warning names ``$.`` of the handle read last: the ``Also=`` line of the file
        being read by the call at depth 99 (each file here has a single ``Also=`` line)."""
        p = top
        for depth in range(1, 100):
            lines = self.read_lines(p) or []
            idx, value = next(((n, m.group(1)) for n, m in enumerate(map(_ALSO.match, lines), 1) if m), (0, ""))
            if depth == 99:
                return idx
            p = self.find_unit(value)
        raise AssertionError("unreachable")

    def _unlink(self, path: str) -> None:
        try:
            self.fs.unlink(self.inv.path(path))
        except OSError:
            pass

    def rmdir_if_empty(self, d: str) -> None:
        """``rmdir_if_empty``: children first (``<$dir/*>``, ``-d`` follows links), then ``d``."""
        try:
            names = sorted(n for n in self.fs.readdir(d) if not n.startswith("."))
        except (OSError, ValueError):
            names = []
        for n in names:
            if self.d(f"{d}/{n}"):
                self.rmdir_if_empty(f"{d}/{n}")
        try:
            self.fs.rmdir(d)
        except (OSError, ValueError):
            pass

    def mask(self, service_path: str) -> None:
        link = f"/etc/systemd/{self.instance}/{posixpath.basename(service_path)}"
        if self.e(link):
            return
        self.make_path(posixpath.dirname(link))
        self._unlink(link)
        try:
            self.fs.symlink("/dev/null", link)
        except OSError as e:
            self.error(f"unable to link {link} to /dev/null: {os.strerror(e.errno or errno.EIO)}")
        self.changed = True
        statefile = f"{self.masked_dir}/{posixpath.basename(service_path)}"
        self.make_path(posixpath.dirname(statefile))
        self.touch(statefile)

    def unmask(self, service_path: str) -> None:
        link = f"/etc/systemd/{self.instance}/{posixpath.basename(service_path)}"
        if not self.e(link):
            return
        if not self.l(link) or self.fs.readlink(link) != "/dev/null":
            return
        statefile = f"{self.masked_dir}/{posixpath.basename(service_path)}"
        if not self.e(statefile):
            return
        try:
            self.fs.unlink(link)
        except OSError as e:
            self.error(f"unable to remove {link}: {os.strerror(e.errno or errno.EIO)}")
        self.changed = True
        self._unlink(statefile)

    def run(self, action: str, names: list[str]) -> int:
        rc = 1 if action in ("is-enabled", "was-enabled", "debian-installed") else 0
        for name in names:
            sp = self.find_unit(name)
            if action == "is-enabled":
                ok = self.all_links_installed(name, sp)
                if not self.quiet:
                    self.inv.err("enabled\n" if ok else "disabled\n")
                rc = 0 if ok else rc
            elif action == "was-enabled":
                ok = self.was_enabled(name)
                if not self.quiet:
                    self.inv.err("enabled\n" if ok else "disabled\n")
                rc = 0 if ok else rc
            elif action == "update-state":
                self.update_state(name, sp)
            elif action == "debian-installed":
                rc = 0 if self.f(self.state_path(name)) else rc
            elif action == "reenable":
                self.remove_links(sp, 0, [sp])
                self.make_links(name, sp, True)
            elif action == "disable":
                self.remove_links(sp, 0, [sp])
                self.rmdir_if_empty(ENABLED["system"])
                self.rmdir_if_empty(ENABLED["user"])
                for top in ("/etc/systemd/system", "/etc/systemd/user"):
                    try:
                        subs = sorted(n for n in self.fs.readdir(top) if not n.startswith("."))
                    except (OSError, ValueError):
                        subs = []
                    for n in subs:
                        if self.d(f"{top}/{n}"):
                            self.rmdir_if_empty(f"{top}/{n}")
            elif action == "enable":
                self.enable(name, sp)
            elif action == "mask":
                self.mask(sp)
            elif action == "unmask":
                self.unmask(sp)
                self.rmdir_if_empty(MASKED["system"])
                self.rmdir_if_empty(MASKED["user"])
        if self.changed and self.instance == "system" and self.d("/run/systemd/system") and self.inv.run:
            self.inv.run(["systemctl", "daemon-reload"], b"")
        return rc


def _program_path(inv: Invocation) -> str:
    """Perl's ``$0``: the path the shell executed (the PATH lookup result)."""
    name = inv.argv[0]
    if "/" in name:
        return name
    found = find_program(inv, name)
    return found[0] if found else name


def deb_systemd_helper(inv: Invocation) -> int:
    """The ``deb-systemd-helper`` model."""
    if inv.env.get("DPKG_ROOT"):
        raise Defer("deb-systemd-helper with DPKG_ROOT set (another root) is not modelled")
    if inv.env.get("_DEB_SYSTEMD_HELPER_DEBUG", "").strip() == "1":
        raise Defer("deb-systemd-helper debug output is not modelled")
    quiet, instance = False, "system"
    rest: list[str] = []
    args = inv.argv[1:]
    for i, a in enumerate(args):
        if a == "--":
            rest += args[i + 1:]
            break
        if a.startswith("-") and a != "-":
            opt = a.lstrip("-")
            if opt in ("quiet", "q", "qu", "qui", "quie"):
                quiet = True
            elif opt in ("user", "u", "us", "use"):
                instance = "user"
            elif opt in ("system", "s", "sy", "sys", "syst", "syste"):
                instance = "system"
            else:
                raise Defer(f"deb-systemd-helper option {a} is not modelled")
            continue
        rest.append(a)
    prog = _program_path(inv)
    if not rest:
        inv.out(f"{prog} is a program which should be called by dpkg maintscripts only.\n")
        inv.out("Please do not run it interactively, ever. Also see the manpage deb-systemd-helper(1).\n")
        return 0
    if not inv.env.get("DPKG_MAINTSCRIPT_PACKAGE") or inv.env.get("DPKG_MAINTSCRIPT_PACKAGE") == "0":
        inv.err(f"{prog} was not called from dpkg. Exiting.\n")
        return 1
    action, names = rest[0], rest[1:]
    h = _Helper(inv, prog, instance, quiet)
    h.script = prog if prog.startswith("/") else "/usr/bin/deb-systemd-helper"
    if action == "purge":
        h.purge, action = True, "disable"
    try:
        return h.run(action, names)
    except _Exit as e:
        return e.status


def deb_systemd_invoke(inv: Invocation) -> int:
    """``deb-systemd-invoke ACTION UNIT...``: policy-rc.d denies offline, so nothing runs (exit 0)."""
    prog = _program_path(inv)
    if len(inv.argv) < 3:
        inv.err(f"Syntax: {prog} <action> <unit file> [<unit file> ...]\n")
        return 1
    args = [a for a in inv.argv[1:] if a not in ("--user", "--system")]
    raise Drop(f"deb-systemd-invoke {' '.join(args)}: services are not started offline "
               f"(/usr/sbin/policy-rc.d returned 101, not running '{' '.join(args)}')", 0)
