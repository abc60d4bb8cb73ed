"""The whole dpkg database of an image, as one object with load/save.

:class:`Database` ties together the status file, the info directory, diversions, stat
overrides and trigger state, the file-ownership index built from every package's ``list``,
and dpkg's log (``/var/log/dpkg.log``, lines as ``log_message`` writes them). dpkg's helper
programs (dpkg-divert, dpkg-statoverride, dpkg-trigger, dpkg-query...) use the same objects.
"""

from __future__ import annotations

import time

from nuwa.deb.configure import incorporate as trig_incorporate
from nuwa.deb.diversions import Diversions
from nuwa.deb.infodb import InfoDB
from nuwa.deb.journal import Journal
from nuwa.deb.runner import ScriptRunner, script_env
from nuwa.deb.statoverride import StatOverrides
from nuwa.deb.status import PkgEntry, StatusFile
from nuwa.deb.triggers import TriggerState, parse_triggers_ci


class Database:
    """dpkg's administrative directory inside an image's filesystem model."""

    def __init__(self, fs, admindir: str = "/var/lib/dpkg", log_path: str | None = "/var/log/dpkg.log",
                 clock=time.time):
        self.fs = fs
        self.admindir = admindir.rstrip("/")
        self.status = StatusFile.load(fs, self.admindir + "/status")
        self.info = InfoDB(fs, self.admindir)
        self.diversions = Diversions.load(fs, self.admindir)
        self.statoverrides = StatOverrides.load(fs, self.admindir)
        self.triggers = TriggerState.load(fs, self.admindir)
        self.log_path = log_path
        self.log_lines: list[str] = []
        self.clock = clock
        self._owners: dict[str, list[PkgEntry]] | None = None
        self._noted: set[int] = set()  # entries whose state dpkg has logged in this run
        self._lists: dict[int, list[str]] = {}
        self.journal = Journal(self)
        #: a run (one dpkg invocation) is in progress: :meth:`open` was called, :meth:`save` not yet
        self.running = False
        #: id(entry) -> version of the archive unpacked for it in this run: dpkg's
        #: ``pkg->available``, which a later run (``dpkg --configure``) does not have
        self.available: dict[int, str] = {}

    @classmethod
    def load(cls, fs, admindir: str = "/var/lib/dpkg", **kw) -> "Database":
        """Read every database file of the image."""
        return cls(fs, admindir, **kw)

    def open(self) -> None:
        """Start a run that changes the database (``modstatdb_open`` for writing).

        The journal's files appear with the first state change or script, whichever comes
        first: nothing before either can observe them, and a package refused by the checks
        that come first leaves the image untouched.
        """
        self.journal.wanted = True
        self.running = True

    def save(self) -> None:
        """End the run: trigger files, status (with status-old) and the journal's cleanup
        (``modstatdb_shutdown``), the log."""
        self.running = False
        self.available.clear()
        self._noted.clear()  # the next run parses the status file again: every package starts dirty
        self.triggers.save()
        if self.journal.is_open:
            self.journal.shutdown()
        else:
            self.status.save(self.fs)
        self.flush_log()

    def sync(self) -> None:
        """Make the files match what dpkg has written by now (before a script runs)."""
        if self.journal.wanted:
            self.journal.open()
        self.triggers.save()
        self.flush_log()

    def after_script(self, incorporate: bool = True) -> None:
        """``post_script_tasks``: diversions re-read, ``dpkg-trigger``'s activations incorporated."""
        self.diversions = Diversions.load(self.fs, self.admindir)
        self.triggers.reload_unincorp()
        if incorporate:
            trig_incorporate(self)

    # ---- the log ----------------------------------------------------------------------------
    def log(self, message: str) -> None:
        """One dpkg.log line (timestamped like ``log_message``)."""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.clock()))
        self.log_lines.append(f"{stamp} {message}")

    def flush_log(self) -> None:
        if not self.log_path or not self.log_lines:
            return
        # surrogateescape: a name or version read from a non-UTF-8 database keeps its bytes
        text = "".join(ln + "\n" for ln in self.log_lines).encode("utf-8", "surrogateescape")
        try:
            with self.fs.open(self.log_path, "ab", 0o644) as f:
                f.write(text)
        except FileNotFoundError:  # no /var/log: dpkg only warns
            pass
        self.log_lines = []

    # ---- state changes ----------------------------------------------------------------------
    def set_state(self, entry: PkgEntry, status: str, want: str | None = None, eflag: str | None = None) -> None:
        """Change a package's state, log it, and clear triggers as ``modstatdb_note`` does."""
        old = entry.status if "Status" in entry.para else "not-installed"
        entry.set_status(want=want, eflag=eflag, status=status)
        if status not in ("triggers-pending", "triggers-awaited"):
            entry.set_triggers_pending([])
        if status in ("not-installed", "config-files"):
            entry.set_triggers_awaited([])
        # pkg_set_status marks a changed state dirty; every package parsed from the status file
        # starts dirty (it was "set" from not-installed), so its first note logs too
        if old != status:
            self._noted.discard(id(entry))
        self.note(entry)
        if not entry.triggers_pending:
            self.clear_awaiters(entry)

    def note(self, entry: PkgEntry) -> None:
        """``modstatdb_note``: log the state once per change (and on a package's first note),
        and record the package's stanza in the journal (``updates/``)."""
        if id(entry) not in self._noted:
            self._noted.add(id(entry))
            self.log(f"status {entry.status} {self.name_always(entry)} {entry.version or '<none>'}")
        self.journal.note(entry)

    def clear_awaiters(self, pend: PkgEntry) -> None:
        """dpkg ``trig_clear_awaiters``: ``pend`` has no pending triggers, so nobody awaits it."""
        me = pend.nonambig()
        for aw in self.status.entries:
            lst = aw.triggers_awaited
            if me in lst:
                lst.remove(me)
                aw.set_triggers_awaited(lst)
                if not lst and aw.status == "triggers-awaited":
                    self.set_state(aw, "triggers-pending" if aw.triggers_pending else "installed")

    def name_always(self, entry: PkgEntry) -> str:
        """``pnaw_always``: ``name:arch`` (dpkg.log spelling)."""
        return f"{entry.name}:{entry.arch}" if entry.arch else entry.name

    # ---- file ownership ---------------------------------------------------------------------
    def files_of(self, entry: PkgEntry) -> list[str]:
        """The package's recorded files (its ``list``), cached."""
        k = id(entry)
        if k not in self._lists:
            self._lists[k] = self.info.read_list(entry.infodb_name())
        return self._lists[k]

    def set_files(self, entry: PkgEntry, paths: list[str]) -> None:
        """Replace the package's file list (written to ``info/`` and the ownership index)."""
        old = self._lists.get(id(entry))
        if old is None and self._owners is not None:
            old = self.files_of(entry)
        if self._owners is not None:
            for p in old or []:
                lst = self._owners.get(p)
                if lst and entry in lst:
                    lst.remove(entry)
            for p in paths:
                self._owners.setdefault(p, []).append(entry)
        self._lists[id(entry)] = list(paths)
        self.info.write_list(entry.infodb_name(), paths)

    def owners(self, path: str) -> list[PkgEntry]:
        """Packages (other than not-installed ones) listing ``path``."""
        if self._owners is None:
            idx: dict[str, list[PkgEntry]] = {}
            for e in self.status.entries:
                if e.status == "not-installed":
                    continue
                for p in self.files_of(e):
                    idx.setdefault(p, []).append(e)
            self._owners = idx
        return list(self._owners.get(path, []))

    def forget_files(self, entry: PkgEntry) -> None:
        """Drop ``entry`` from the ownership index (its list file is handled by the caller)."""
        if self._owners is not None:
            for p in self._lists.get(id(entry), []):
                lst = self._owners.get(p)
                if lst and entry in lst:
                    lst.remove(entry)
        self._lists[id(entry)] = []

    # ---- triggers -----------------------------------------------------------------------------
    def triggers_ci(self, entry: PkgEntry):
        """The directives of the installed package's ``triggers`` file."""
        data = self.info.read(entry.infodb_name(), "triggers")
        if data is None:
            return []
        return parse_triggers_ci(data.decode("utf-8", "replace"), self.info.path(entry.infodb_name(), "triggers"))

    # ---- scripts -----------------------------------------------------------------------------
    def run_script(self, runner: ScriptRunner, entry: PkgEntry, script_name: str, args: list[str],
                   script: bytes | None = None, arch: str | None = None, path: str | None = None) -> int:
        """Run a maintainer script if it exists (``script`` given, or installed in info/)."""
        if script is None:
            script = self.info.read(entry.infodb_name(), script_name)
            path = self.info.path(entry.infodb_name(), script_name)
            if script is None:
                return 0
        env = script_env(entry.name, arch or entry.arch, script_name, self.admindir)
        self.sync()
        rc = runner.run(entry.name, script_name, list(args), env, script=script, fs=self.fs, path=path or "")
        # maintscript_postinst only re-reads diversions: its caller incorporates triggers after
        # noting the new state (post_postinst_tasks); every other script gets post_script_tasks
        self.after_script(incorporate=script_name != "postinst")
        return rc
