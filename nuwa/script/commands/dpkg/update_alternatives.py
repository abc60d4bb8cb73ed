"""``update-alternatives`` (dpkg 1.21.22): link groups, ``/etc/alternatives`` and the admin files.

Mirrors ``utils/update-alternatives.c`` step by step over the image's filesystem model (its
system layer, messages, links, log and admin files, is
:mod:`nuwa.script.commands.dpkg.alternatives_fsys`):

- the command line as its ``main`` reads it: options anywhere, each action's operands right
  after it, ``--slave`` only after ``--install``, the ``unknown argument``/``badusage``
  errors (exit 2); ``--quiet``/``--verbose``/``--debug``, ``--force``, ``--skip-auto``,
  ``--altdir``/``--admindir``/``--instdir``/``--root``/``--log`` and ``DPKG_ROOT``/
  ``DPKG_ADMINDIR``, quirks included (``--instdir`` only changes the length by which a later
  ``--altdir`` is shortened; ``--root`` resets the admin directory, altdir and log);
- ``--install`` checked against every group (a name or link owned by another group, a slave
  that is another group's master), then the group evolved: master and slave links renamed
  when their paths changed (or dropped when the new slave target is missing), new slaves
  marked as changed; ``--remove``, ``--remove-all``, ``--set``, ``--auto``, ``--display``,
  ``--query``, ``--list``, ``--get-selections``, ``--set-selections`` (lines of at most 1023
  bytes, the skip messages with their quirks, a group's current choice read once per run);
- the selection logic: ``alternative_select_mode`` (a dangling or hand-made
  ``/etc/alternatives/NAME``), ``alternative_get_best`` (highest priority, the current choice
  kept on ties), manual mode surviving installs, ``alternative_update``'s switch, repair of a
  broken group ("forcing reinstallation"), slave-change update, full removal;
- links prepared as ``ALTDIR/NAME.dpkg-tmp`` and ``LINK.dpkg-tmp``, renamed in one commit
  pass, a new link given its target's modification time; a LINK that is not a symlink is
  left alone with the warning unless ``--force``; slaves the chosen master lacks removed.

Deferred: ``--config`` and ``--all`` (interactive), ``--help`` and ``--version`` (their texts
are not modelled) and a rename the kernel refuses other than with ENOENT; a deferral
part-way rolls the run back (:func:`all_or_nothing`).
"""

from __future__ import annotations

import errno

from nuwa.deb.alternatives import ALT_TMP_EXT, Choice, c_strtol
from nuwa.script.commands.accounts.db import all_or_nothing
from nuwa.script.commands.dpkg.alternatives_fsys import (ADMINDIR, ALTDIR, DEBUG, LOGDIR, MISSING, OTHER, PROG, QUIET,
                                                    SYMLINK, VERBOSE, AltSystem, Group, UAExit, cstr, has_slave, pad)
from nuwa.script.context import Defer, Invocation

UPDATE_NO, UPDATE_SLAVE_CHANGED, UPDATE_LINK_BROKEN = 0, 1, 2
ONE_NAME = ("display", "query", "auto", "config", "list", "remove-all")


class UpdateAlternatives(AltSystem):
    """One run of update-alternatives against the image: the selection logic and ``main``."""

    # ---- current and best ------------------------------------------------------------------
    def get_current(self, g: Group) -> str | None:
        """``alternative_get_current``: the target of ALTDIR/NAME, read once per group."""
        if g.known_current:
            return g.current
        curlink = f"{self.altdir}/{g.name}"
        target, err = self.areadlink(curlink)
        if target is None and err != errno.ENOENT:
            self.syserr(f"cannot stat file '{self.instdir}{curlink}'", err)
        g.known_current, g.current = True, target
        return target

    def get_best(self, g: Group) -> Choice | None:
        return g.alt.best(self.get_current(g))

    def set_status(self, g: Group, status: str) -> None:
        """``alternative_set_status`` (logs a change of a known status)."""
        old = g.alt.status
        if old == "" or status != old:
            g.modified = True
        if old != "" and status != old:
            self.log(f"status of link group {cstr(g.alt.link)} set to {status}")
        g.alt.status = status

    def set_link(self, g: Group, link: str) -> None:
        if g.alt.link is None or link != g.alt.link:
            g.modified = True
        g.alt.link = link

    def select_mode(self, g: Group, current: str | None) -> None:
        """``alternative_select_mode``: a dangling or hand-changed link decides the mode."""
        if current is not None:
            if g.alt.choice(current) is None:
                where = f"{self.instdir}{self.altdir}/{g.name}"
                if self.missing(current):
                    self.warning(f"{where} is dangling; it will be updated with best choice")
                    self.set_status(g, "auto")
                elif g.alt.status != "manual":
                    self.warning(f"{where} has been changed (manually or by a script); "
                                 "switching to manual updates only")
                    self.set_status(g, "manual")
        else:
            self.verbose(f"setting up automatic selection of {g.name}")
            self.set_status(g, "auto")

    # ---- preparing and committing links ----------------------------------------------------
    def needs_link_update(self, link: str, target: str) -> bool:
        """``alternative_path_needs_update``."""
        if self.force:
            return True
        kind = self.classify(link)
        if kind == SYMLINK:
            cur, err = self.areadlink(link)
            if cur is None:
                self.syserr(f"unable to read link '{self.instdir}{link[:255]}'", err)
            return cur != target
        if kind == OTHER:
            self.warning(f"not replacing {link} with a link")
            return False
        return True

    def can_remove(self, link: str) -> bool:
        return self.force or self.classify(link) != OTHER

    def prepare_single(self, g: Group, name: str, link: str, file: str) -> None:
        """``alternative_prepare_install_single``: temporary links now, renames at commit."""
        if self.missing(self.altdir):
            rc = self.make_path(self.root(self.altdir))
            if rc:
                self.syserr(f"cannot create alternatives directory '{self.root(self.altdir)}'", rc)
        fn = f"{self.altdir}/{name}"
        fntmp = fn + ALT_TMP_EXT
        self.fsys_symlink(file, fntmp)
        g.ops.append(("mv", fntmp, fn))
        if self.missing(fn):
            g.ops.append(("ref", fn, file))
        if self.needs_link_update(link, fn):
            tmp = link + ALT_TMP_EXT
            self.fsys_symlink(fn, tmp)
            g.ops.append(("mv", tmp, link))
            if self.missing(link):
                g.ops.append(("ref", link, fn))

    def can_install_slave(self, fs: Choice, name: str) -> bool:
        return has_slave(fs, name) and not self.missing(fs.slaves[name])

    def prepare_install(self, g: Group, choice: str) -> None:
        """``alternative_prepare_install``: the master and every slave of ``choice``."""
        fs = g.alt.choice(choice)
        if fs is None:
            self.error(f"can't install unknown choice {choice}")
        self.prepare_single(g, g.name, g.alt.link, choice)
        for sname, slink in g.alt.slaves:
            if self.can_install_slave(fs, sname):
                self.prepare_single(g, sname, slink, fs.slaves[sname])
                continue
            if has_slave(fs, sname):
                self.warning(f"skip creation of {slink} because associated file {fs.slaves[sname]} "
                             f"(of link group {g.name}) doesn't exist")
            if self.can_remove(slink):
                g.ops.append(("rm", slink))
            else:
                self.warning(f"not removing {slink} since it's not a symlink")
            g.ops.append(("rm", f"{self.altdir}/{sname}"))

    def broken_slave(self, sname: str, slink: str, fs: Choice) -> bool:
        """``alternative_has_broken_slave``."""
        wanted = f"{self.altdir}/{sname}"
        if self.can_install_slave(fs, sname):
            return self.broken_link(slink, wanted) or self.broken_link(wanted, fs.slaves[sname])
        return self.classify(slink) != MISSING or self.classify(wanted) != MISSING

    def needs_update(self, g: Group) -> int:
        """``alternative_needs_update``."""
        if self.broken_link(g.alt.link, f"{self.altdir}/{g.name}"):
            return UPDATE_LINK_BROKEN
        current = self.get_current(g)
        if current is None:
            return UPDATE_LINK_BROKEN
        fs = g.alt.choice(current)
        if fs is None:
            return UPDATE_NO
        reason = UPDATE_NO
        for sname, slink in g.alt.slaves:
            if self.broken_slave(sname, slink, fs):
                if sname not in g.updated:
                    return UPDATE_LINK_BROKEN
                reason = UPDATE_SLAVE_CHANGED
        return reason

    def update(self, g: Group, current: str | None, new: str | None) -> None:
        """``alternative_update``: switch, repair or remove, save the admin file, commit."""
        a = g.alt
        if not a.choices:
            self.log(f"link group {a.name} fully removed")
            self.remove_files(g)
            return
        if new is not None and (current is None or new != current):
            self.log(f"link group {a.name} updated to point to {new}")
            mode = "auto mode" if a.status == "auto" else "manual mode"
            self.info(f"using {new} to provide {a.link} ({a.name}) in {mode}")
            self.debug(f"prepare_install({new})")
            self.prepare_install(g, new)
        else:
            reason = self.needs_update(g)
            if reason:
                if reason == UPDATE_SLAVE_CHANGED:
                    self.log(f"link group {a.name} updated with changed slaves")
                    self.info(f"updating alternative {cstr(current)} because link group {a.name} "
                              "has changed slave links")
                else:
                    self.log(f"auto-repair link group {a.name}")
                    self.warning(f"forcing reinstallation of alternative {cstr(current)} because link group "
                                 f"{a.name} is broken")
                if current is not None and a.choice(current) is None:
                    best = self.get_best(g)
                    self.warning(f"current alternative {current} is unknown, switching to {best.path} "
                                 f"for link group {a.name}")
                    current = best.path
                    self.set_status(g, "auto")
                if current is not None:
                    self.prepare_install(g, current)
        if g.modified:
            self.debug(f"{a.name} is modified and will be saved")
            self.save(g)
        self.commit(g)

    # ---- actions ---------------------------------------------------------------------------
    def check_name(self, name: str) -> None:
        if any(c in name for c in "/ \t"):
            self.error(f"alternative name ({name}) must not contain '/' and spaces")

    def check_link(self, link: str) -> None:
        if not link.startswith("/"):
            self.error(f"alternative link is not absolute as it should be: {link}")

    def check_path(self, path: str) -> None:
        if not path.startswith("/"):
            self.error(f"alternative path is not absolute as it should be: {path}")

    def check_install_args(self, inst: Group, fileset: Choice) -> None:
        """``alternative_check_install_args``: names, links and paths against every group."""
        self.check_name(inst.name)
        self.check_link(inst.alt.link)
        self.check_path(fileset.path)
        links: list[tuple[str, Group]] = []
        parents: list[tuple[str, Group]] = []
        for g in self.load_all():
            links.append((g.alt.link, g))
            parents.append((g.name, g))
            for sname, slink in g.alt.slaves:
                links.append((slink, g))
                parents.append((sname, g))

        def find(table, key):
            return next((g for k, g in table if k == key), None)

        found = find(parents, inst.name)
        if found is not None and found.name != inst.name:
            self.error(f"alternative {inst.name} can't be master: it is a slave of {found.name}")
        found = find(links, inst.alt.link)
        if found is not None and found.name != inst.name:
            self.error(f"alternative link {inst.alt.link} is already managed by {found.name}")
        if self.missing(fileset.path):
            self.error(f"alternative path {self.instdir}{fileset.path} doesn't exist")
        for sname, slink in inst.alt.slaves:
            self.check_name(sname)
            self.check_link(slink)
            self.check_path(fileset.slaves[sname])
            found = find(parents, sname)
            if found is not None and found.name != inst.name:
                if found.name == sname:
                    self.error(f"alternative {sname} can't be slave of {inst.name}: it is a master alternative")
                self.error(f"alternative {sname} can't be slave of {inst.name}: it is a slave of {found.name}")
            found = find(links, slink)
            if found is not None and found.name != inst.name:
                self.error(f"alternative link {slink} is already managed by {found.name}")
            if found is not None:
                other = next((n for n, lk in found.alt.slaves if lk == slink), None)
                if other is not None and other != sname:
                    self.error(f"alternative link {slink} is already managed by {other} (slave of {found.name})")

    def evolve_slave(self, a: Group, cur: str | None, sname: str, slink: str, fs: Choice, inst: Group) -> None:
        """``alternative_evolve_slave``: move or drop a slave link whose path changed."""
        old = a.slave_link(sname)
        if old is None:
            inst.updated.add(sname)
            return
        if cur is not None and cur == fs.path:
            new_file = fs.slaves.get(sname)
        else:
            new_file, _ = self.areadlink(f"{self.altdir}/{sname}")
        if old != slink and self.classify(old) == SYMLINK:
            if new_file is not None and not self.missing(new_file):
                self.info(f"renaming {sname} slave link from {self.instdir}{old} to {self.instdir}{slink}")
                self.xrename(self.root(old), self.root(slink))
            else:
                self.fsys_rm(old)
            inst.updated.add(sname)

    def install(self, a: Group, inst: Group, current: str | None, fileset: Choice) -> tuple[Group, str | None]:
        """``alternative_install``: returns the group worked on and the new choice."""
        if a.alt.link is not None:
            if self.classify(a.alt.link) == SYMLINK and a.alt.link != inst.alt.link:
                self.info(f"renaming {inst.name} link from {self.instdir}{a.alt.link} to "
                          f"{self.instdir}{inst.alt.link}")
                self.xrename(self.root(a.alt.link), self.root(inst.alt.link))
            self.set_link(a, inst.alt.link)
            for sname, slink in inst.alt.slaves:
                self.evolve_slave(a, current, sname, slink, fileset, inst)
                a.add_slave(sname, slink)
                if sname in inst.updated:
                    a.updated.add(sname)
                else:
                    a.updated.discard(sname)
        else:
            a = inst
        a.add_choice(fileset)
        new = None
        if a.alt.status == "auto":
            new = self.get_best(a).path
        else:
            self.verbose(f"automatic updates of {self.altdir}/{a.name} are disabled; leaving it alone")
            self.verbose(f"to return to automatic updates use '{PROG} --auto {a.name}'")
        return a, new

    def remove(self, a: Group, current: str | None, path: str) -> str | None:
        """``alternative_remove``."""
        if a.alt.choice(path) is not None:
            a.alt.choices = [c for c in a.alt.choices if c.path != path]
            a.modified = True
        else:
            self.verbose(f"alternative {path} for {a.name} not registered; not removing")
        if current is not None and current == path:
            if a.alt.status == "manual":
                self.info(f"removing manually selected alternative - switching {a.name} to auto mode")
                self.set_status(a, "auto")
            best = self.get_best(a)
            if best is not None:
                return best.path
        return None

    def set_manual(self, a: Group, path: str) -> str:
        if a.alt.choice(path) is None:
            self.error(f"alternative {path} for {a.name} not registered; not setting")
        self.set_status(a, "manual")
        return path

    def set_auto(self, a: Group) -> str | None:
        self.set_status(a, "auto")
        if not a.alt.choices:
            self.info(f"there is no program which provides {a.name}")
            return None
        return self.get_best(a).path

    def display_user(self, a: Group) -> None:
        """``--display``."""
        alt = a.alt
        self.pr(f"{a.name} - {'auto mode' if alt.status == 'auto' else 'manual mode'}")
        best = self.get_best(a)
        self.pr(f"  link best version is {best.path}" if best else "  link best version not available")
        current = self.get_current(a)
        self.pr(f"  link currently points to {current}" if current is not None else "  link currently absent")
        self.pr(f"  link {a.name} is {alt.link}")
        for sname, slink in alt.slaves:
            self.pr(f"  slave {sname} is {slink}")
        for fs in alt.choices:
            self.pr(f"{fs.path} - priority {fs.priority}")
            for sname, _ in alt.slaves:
                if has_slave(fs, sname):
                    self.pr(f"  slave {sname}: {fs.slaves[sname]}")

    def display_query(self, a: Group) -> None:
        """``--query``."""
        alt = a.alt
        self.pr(f"Name: {a.name}")
        self.pr(f"Link: {alt.link}")
        if alt.slaves:
            self.pr("Slaves:")
            for sname, slink in alt.slaves:
                self.pr(f" {sname} {slink}")
        self.pr(f"Status: {alt.status}")
        best = self.get_best(a)
        if best is not None:
            self.pr(f"Best: {best.path}")
        current = self.get_current(a)
        self.pr(f"Value: {current if current is not None else 'none'}")
        for fs in alt.choices:
            self.pr("")
            self.pr(f"Alternative: {fs.path}")
            self.pr(f"Priority: {fs.priority}")
            if not alt.slaves:
                continue
            self.pr("Slaves:")
            for sname, _ in alt.slaves:
                if has_slave(fs, sname):
                    self.pr(f" {sname} {fs.slaves[sname]}")

    def get_selections(self) -> None:
        for g in self.load_all():
            cur = self.get_current(g)
            self.inv.out(f"{pad(g.name, 30)} {pad(g.alt.status, 8)} {cur if cur is not None else ''}\n")

    def set_selections(self) -> None:
        """``alternative_set_selections`` on standard input (lines of at most 1023 bytes)."""
        groups = self.load_all()
        data = bytes(self.inv.stdin)
        pos = 0
        desc = "<standard input>"
        while pos < len(data):
            chunk = data[pos:pos + 1023]
            nl = chunk.find(b"\n")
            if nl < 0:
                self.error(f"line too long or not terminated while trying to read {desc}")
            line = chunk[:nl].decode("utf-8", "surrogateescape")
            pos += nl + 1
            n = len(line)
            i = 0
            while i < n and line[i] not in " \t":
                i += 1
            if i >= n:
                self.info(f"skip invalid selection line: {line}")
                continue
            name = line[:i]
            i += 1
            while i < n and line[i] in " \t":
                i += 1
            s0 = i
            while i < n and line[i] not in " \t":
                i += 1
            if i >= n:
                self.info(f"skip invalid selection line: {name}")
                continue
            status = line[s0:i]
            i += 1
            while i < n and line[i] in " \t":
                i += 1
            if i >= n:
                self.info(f"skip invalid selection line: {name}")
                continue
            self.set_selection(groups, name, status, line[i:])

    def set_selection(self, groups: list[Group], name: str, status: str, choice: str) -> None:
        self.debug(f"set_selection({name}, {status}, {choice})")
        a = next((g for g in groups if g.name == name), None)
        if a is None:
            self.info(f"skip unknown alternative {name}")
            return
        new = None
        if status == "auto":
            self.info(f"selecting alternative {name} as auto")
            new = self.set_auto(a)
        elif a.alt.choice(choice) is not None:
            self.info(f"selecting alternative {name} as choice {choice}")
            new = self.set_manual(a, choice)
        else:
            self.info(f"alternative {name} unchanged because choice {choice} is not available")
        if new is not None:
            current = self.get_current(a)
            self.select_mode(a, current)
            self.update(a, current, new)

    # ---- main ------------------------------------------------------------------------------
    def set_action(self, name: str) -> None:
        if self.action:
            self.badusage(f"two commands specified: --{self.action} and --{name}")
        self.action = name

    def run(self) -> int:
        argv = self.inv.argv
        argc = len(argv)
        a = inst = fileset = None
        path = None
        i = 1

        def missing_args(k: int) -> bool:
            return argc < i + k + 1

        while i < argc:
            arg = argv[i]
            if not arg.startswith("--"):
                self.error(f"unknown argument '{arg}'")
            elif arg in ("--help", "--version"):
                raise Defer(f"update-alternatives {arg}: its text is not modelled")
            elif arg == "--quiet":
                self.verbosity = QUIET
            elif arg == "--verbose":
                self.verbosity = VERBOSE
            elif arg == "--debug":
                self.verbosity = DEBUG
            elif arg == "--install":
                self.set_action("install")
                if missing_args(4):
                    self.badusage("--install needs <link> <name> <path> <priority>")
                alink, aname, apath, prio_str = argv[i + 1:i + 5]
                if alink == apath:
                    self.badusage(f"<link> '{alink}' is the same as <path>")
                prio, erange = c_strtol(prio_str)
                if prio is None:
                    self.badusage(f"priority '{prio_str}' must be an integer")
                if erange:
                    self.badusage(f"priority '{prio_str}' is out of range")
                a, inst = Group(aname), Group(aname)
                self.set_status(inst, "auto")
                self.set_link(inst, alink)
                fileset = Choice(apath, prio)
                i += 4
            elif arg in ("--remove", "--set"):
                self.set_action(arg[2:])
                if missing_args(2):
                    self.badusage(f"{arg} needs <name> <path>")
                a, path = Group(argv[i + 1]), argv[i + 2]
                self.check_name(a.name)
                self.check_path(path)
                i += 2
            elif arg[2:] in ONE_NAME:
                self.set_action(arg[2:])
                if missing_args(1):
                    self.badusage(f"{arg} needs <name>")
                a = Group(argv[i + 1])
                self.check_name(a.name)
                i += 1
            elif arg in ("--all", "--get-selections", "--set-selections"):
                self.set_action(arg[2:])
            elif arg == "--slave":
                if self.action != "install":
                    self.badusage("--slave only allowed with --install")
                if missing_args(3):
                    self.badusage("--slave needs <link> <name> <path>")
                slink, sname, spath = argv[i + 1:i + 4]
                if slink == spath:
                    self.badusage(f"<link> '{slink}' is the same as <path>")
                if inst.name == sname:
                    self.badusage(f"<name> '{sname}' is both primary and slave")
                if slink == inst.alt.link:
                    self.badusage(f"<link> '{slink}' is both primary and slave")
                if inst.slave_link(sname) is not None:
                    self.badusage(f"duplicate slave <name> '{sname}'")
                if any(lk == slink for _, lk in inst.alt.slaves):
                    self.badusage(f"duplicate slave <link> '{slink}'")
                inst.add_slave(sname, slink)
                fileset.slaves[sname] = spath
                i += 3
            elif arg in ("--log", "--altdir", "--admindir", "--instdir", "--root"):
                if missing_args(1):
                    self.badusage(f"{arg} needs a {'<file>' if arg == '--log' else '<directory>'} argument")
                value = argv[i + 1]
                i += 1
                if arg == "--log":
                    self.log_file = self.root(value)
                elif arg == "--admindir":
                    self.admdir = value
                elif arg == "--root":
                    self.instdir, self.instdir_len = value, len(value)
                    self.log_file = self.root(LOGDIR + "/alternatives.log")
                    self.altdir = ALTDIR
                    self.admdir = self.root(ADMINDIR + "/alternatives")
                else:
                    if arg == "--altdir":
                        self.altdir = value
                    else:  # fsys_set_dir's result is dropped: only the length changes
                        self.instdir_len = len(value)
                    n = self.instdir_len
                    if self.altdir[:n] == self.instdir[:n]:
                        self.altdir = self.altdir[n:]
            elif arg == "--skip-auto":
                pass  # only --config reads it
            elif arg == "--force":
                self.force = True
            else:
                self.badusage(f"unknown option '{arg}'")
            i += 1

        if not self.action:
            self.badusage("need --display, --query, --list, --get-selections, --config, --set, --set-selections, "
                          "--install, --remove, --all, --remove-all or --auto")
        self.debug(f"root={self.instdir} admdir={self.admdir} altdir={self.altdir}")
        action = self.action
        if action in ("config", "all"):
            raise Defer(f"update-alternatives --{action} asks the administrator to choose")
        modifies_alt = action in ("set", "auto", "remove", "remove-all", "install")
        modifies_sys = modifies_alt or action == "set-selections"

        if action == "install":
            self.check_install_args(inst, fileset)
        if action in ("display", "query", "list", "set", "auto", "remove-all"):
            if not self.load(a, lax=False):
                self.error(f"no alternatives for {a.name}")
        elif action == "remove":
            if not self.load(a, lax=False):
                self.verbose(f"no alternatives for {a.name}")
                return 0
        elif action == "install":
            self.load(a, lax=False)

        if modifies_sys:
            self.log(f"run with {argv_string(argv)}")
        current = new = None
        if modifies_alt:
            current = self.get_current(a)
            self.select_mode(a, current)

        if action == "get-selections":
            self.get_selections()
        elif action == "set-selections":
            self.set_selections()
        elif action == "display":
            self.display_user(a)
        elif action == "query":
            self.display_query(a)
        elif action == "list":
            for fs in a.alt.choices:
                self.pr(fs.path)
        elif action == "set":
            new = self.set_manual(a, path)
        elif action == "auto":
            new = self.set_auto(a)
        elif action == "remove":
            new = self.remove(a, current, path)
        elif action == "remove-all":
            if a.alt.choices:
                a.modified = True
            a.alt.choices = []
        elif action == "install":
            a, new = self.install(a, inst, current, fileset)
        if modifies_alt:
            self.update(a, current, new)
        return 0


def argv_string(argv: list[str]) -> str:
    """``get_argv_string``: the arguments joined by spaces, as many as fit in 2048 bytes."""
    out = ""
    size = 0
    for arg in argv[1:]:
        n = len(arg.encode("utf-8", "surrogateescape"))
        if size + n + 2 > 2048:
            break
        if size:
            out += " "
            size += 1
        out += arg
        size += n
    return out


@all_or_nothing
def update_alternatives(inv: Invocation) -> int:
    """The ``update-alternatives`` model."""
    try:
        return UpdateAlternatives(inv).run()
    except UAExit as e:
        return e.status


__all__ = ["UpdateAlternatives", "argv_string", "update_alternatives"]
