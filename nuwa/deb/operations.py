"""dpkg's actions over an image: install, upgrade, downgrade, reinstall, remove, purge.

:class:`Dpkg` is the library face of Nuwa's dpkg. ``install(debs)`` is ``dpkg -i``: every
archive is unpacked in the order given, then every unpacked package is configured (a package
whose Depends are not yet met waits for the others, as dpkg's queue does), then pending
triggers are processed. ``remove``/``purge`` are ``dpkg -r``/``dpkg -P``. Nothing is written
to the package database until :meth:`Dpkg.commit` (``status`` with ``status-old``, trigger
files, ``dpkg.log``); files in the image change as dpkg would change them, through the image's
filesystem model.

When the filesystem model offers savepoints (an :class:`nuwa.fs.overlay.Overlay`), each
package is processed inside one and a failure rolls its files back. Without savepoints every
archive is verified in full (members, sizes, file overwrites) before the first byte is
written, so a bad package leaves the tree untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.deb import archive as A
from nuwa.deb import audit
from nuwa.deb.arch import native_architecture
from nuwa.deb.configure import configure, incorporate, pending_trigger_packages, trigproc
from nuwa.deb.db import Database
from nuwa.deb.deps import unsatisfied_depends
from nuwa.deb.remove import remove_package
from nuwa.deb.runner import RecordingRunner
from nuwa.deb.unpack import Unpacker, _lstat
from nuwa.errors import InvalidInputError, OperationFailedError


#: archives decompressed ahead of the one being unpacked (each up to ``archive.PREFETCH_AHEAD``)
PREFETCH_NEXT = 2


@dataclass
class Report:
    """What an operation did, per package and per conffile."""

    actions: list = field(default_factory=list)  # (action, package, old version, new version)
    conffiles: list = field(default_factory=list)  # (package, path, decision)
    replaced: list = field(default_factory=list)  # (other package, path)
    disappeared: list = field(default_factory=list)
    triggers: list = field(default_factory=list)  # (package, names)

    def as_dict(self) -> dict:
        return {k: list(v) for k, v in self.__dict__.items()}


def _fnv1a(name: str) -> int:
    """dpkg's ``str_fnv_hash`` (FNV-1a, 32-bit) of a package name."""
    h = 2166136261
    for b in name.encode("utf-8", "surrogateescape"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def _hash_position(entries):
    """Sort key giving the order of dpkg's ``pkg_hash_iter``: bins 0..65520 by the FNV-1a hash
    of the lower-cased name (``pkg_hash_find_set``), within a bin the names in the order the
    status file introduced them, within a name its architectures in file order."""
    first_seen: dict[str, int] = {}
    for i, e in enumerate(entries):
        first_seen.setdefault(e.name.lower(), i)
    index = {id(e): i for i, e in enumerate(entries)}

    def key(e):
        n = e.name.lower()
        return (_fnv1a(n) % 65521, first_seen[n], index[id(e)])
    return key


class Dpkg:
    """Nuwa's dpkg bound to one image's filesystem model."""

    def __init__(self, fs, runner=None, admindir: str = "/var/lib/dpkg", conffile_policy: str = "old",
                 native_arch: str | None = None, check_audit: bool = True, verify: bool | None = None,
                 log_path: str | None = "/var/log/dpkg.log"):
        if conffile_policy not in ("old", "new"):
            raise InvalidInputError(f"unknown conffile policy {conffile_policy!r} (old or new)")
        self.fs = fs
        self.runner = runner if runner is not None else RecordingRunner()
        self.db = Database.load(fs, admindir, log_path=log_path)
        self.admindir = admindir
        if check_audit:
            audit.check(self.db)
        self.policy = conffile_policy
        self.native_arch = native_arch or self._native_arch()
        self.verify = (not hasattr(fs, "savepoint")) if verify is None else verify
        self.report = Report()
        self._upcoming: list[A.DebArchive] = []  # what the coming unpacks take (read_ahead)

    def _native_arch(self) -> str | None:
        """dpkg's compiled-in architecture, read from the image (``nuwa.deb.arch``: its dpkg
        package, ``arch`` file, programs' ELF headers); for a bare database (a fresh root, a
        test tree) the architecture most of its installed packages have. Never the host's."""
        arch = native_architecture(self.fs, self.admindir)
        if arch:
            return arch
        counts: dict[str, int] = {}
        for e in self.db.status.entries:
            if e.arch and e.arch not in ("all", "any"):
                counts[e.arch] = counts.get(e.arch, 0) + 1
        if counts:
            return max(counts, key=lambda a: counts[a])
        # An empty root (no dpkg, no packages, no programs): the first architecture-specific
        # package unpacked into it decides (_arch_for), as installing dpkg itself there would.
        return None

    def _arch_for(self, deb: A.DebArchive) -> str | None:
        """The native architecture to check ``deb`` against (decided by it on an empty root)."""
        if self.native_arch is None:
            arch = deb.control.get("Architecture", "").strip()
            if arch and arch != "all":
                self.native_arch = arch
        return self.native_arch

    # ---- savepoints ---------------------------------------------------------------------------
    def _guarded(self, fn):
        sp = self.fs.savepoint() if hasattr(self.fs, "savepoint") else None
        try:
            result = fn()
        except BaseException:
            if sp is not None:
                self.fs.rollback_to(sp)
            raise
        if sp is not None and hasattr(self.fs, "release"):
            self.fs.release(sp)
        return result

    # ---- reading ahead ------------------------------------------------------------------------
    def read_ahead(self, archives) -> None:
        """The archives the coming unpacks take, in order (apt's whole sequence of dpkg calls,
        or one call's operands): the first starts decompressing now, and unpacking each one
        starts the next (:meth:`DebArchive.prefetch`), so that the decompressor works on a
        second core while this one unpacks and runs scripts. :meth:`drop_read_ahead` ends it."""
        self._upcoming = [a for a in archives if isinstance(a, A.DebArchive)]
        self._prefetch_upcoming()

    def drop_read_ahead(self) -> None:
        """Stop what was decompressed ahead and will not be unpacked (after a failure)."""
        for a in self._upcoming:
            a.drop_prefetch()
        self._upcoming = []

    def _prefetch_upcoming(self) -> None:
        """The next :data:`PREFETCH_NEXT` archives start decompressing (one small package
        unpacked quickly leaves the decoder of the one after it no time), and so does the
        first multi-block .xz still to come (a kernel's data.tar: its first Blocks take the
        longest decode of an upgrade, done by then on the core the scripts and smaller unpacks
        leave idle)."""
        up = self._upcoming
        if up:
            for a in up[:PREFETCH_NEXT]:
                a.prefetch()
            for a in up[PREFETCH_NEXT:]:
                if a.multi_block():
                    a.prefetch()
                    break

    def _next_after(self, deb: A.DebArchive) -> None:
        up = self._upcoming
        for i, a in enumerate(up):
            if a is deb:
                del up[:i + 1]
                self._prefetch_upcoming()
                return

    def _unpacking(self, archives, fn):
        """``fn()`` with ``archives`` read ahead, unless a caller already gave the order."""
        if self._upcoming:
            return fn()
        self.read_ahead(archives)
        try:
            return fn()
        finally:
            self.drop_read_ahead()

    # ---- actions --------------------------------------------------------------------------------
    def _open(self, debs) -> list[A.DebArchive]:
        return [d if isinstance(d, A.DebArchive) else A.open_deb(d) for d in debs]

    def preflight(self, deb: A.DebArchive) -> None:
        """Verify a whole archive and the file overwrites it would make, writing nothing."""
        up = Unpacker(self.db, deb, self.runner, self._arch_for(deb), report={})
        entry = up._find_entry()
        conff = {ln.strip() for ln in deb.control_files.get("conffiles", A.ControlMember("", b"", 0, 0)).data.decode(
            "utf-8", "surrogateescape").splitlines() if ln.strip().startswith("/")}
        said: dict = {}
        for m in deb.members():
            m.read()  # checks sizes and compression
            use = self.db.diversions.use_path(m.path, up.name)
            st = _lstat(self.fs, use)
            if m.type == A.DIR and st is not None:
                continue
            up._check_overwrite(entry, m.path, m, st, m.path in conff, said)

    def unpack(self, debs) -> list:
        """``dpkg --unpack``: unpack each archive; returns the status entries."""
        archives = self._open(debs)
        self.db.open()
        self.db.log("startup archives unpack")
        return self._unpacking(archives, lambda: [self._unpack_one(d) for d in archives])

    def _unpack_one(self, deb: A.DebArchive):
        self._next_after(deb)
        if self.verify:
            self.preflight(deb)
        rep: dict = {}
        entry = self._guarded(lambda: Unpacker(self.db, deb, self.runner, self._arch_for(deb), report=rep).run())
        self.report.actions += rep.get("actions", [])
        self.report.replaced += rep.get("replaced", [])
        self.report.disappeared += rep.get("disappeared", [])
        return entry

    def configure(self, names: list[str], triggers: bool = True) -> Report:
        """``dpkg --configure NAME...`` (``name`` or ``name:arch``); ``triggers=False`` is
        ``--no-triggers``: activations are recorded, nothing is processed (as apt calls dpkg)."""
        self.db.open()
        self.db.log("startup packages configure")
        entries = []
        for n in names:
            e = self.db.status.find(n)
            if e is None or e.status == "not-installed":
                raise InvalidInputError(f"package {n} is not installed", where="configure")
            entries.append(e)
        self.configure_all(entries, triggers=triggers)
        return self.report

    def configure_pending(self, triggers: bool = True) -> Report:
        """``dpkg --configure --pending``: every unpacked or half-configured package, queued in
        the order dpkg's package hash yields them (``enqueue_pending``), then (unless
        ``triggers=False``) every pending trigger."""
        self.db.open()
        self.db.log("startup packages configure")
        self.configure_all(None, triggers=triggers)
        return self.report

    def configure_all(self, entries=None, triggers: bool = True) -> None:
        """``dpkg --configure`` of ``entries`` (default: what ``--pending`` takes: every unpacked
        or half-configured package that is wanted, in dpkg's package-hash order), in dependency
        order, then trigger processing (skipped with ``triggers=False``)."""
        self.db.open()
        if entries is None:
            entries = sorted((e for e in self.db.status.entries if e.status in ("unpacked", "half-configured")
                              and e.want in ("install", "hold")), key=_hash_position(self.db.status.entries))
        queue = list(entries)
        versions = {e.name: e.version for e in queue}
        while queue:
            progress = False
            for e in list(queue):
                others = {n: v for n, v in versions.items() if n != e.name}
                if unsatisfied_depends(self.db, e, {}) and not unsatisfied_depends(self.db, e, others):
                    # satisfied only by packages still to be configured in this run: wait for them
                    if any(x is not e and self._needed_by(x, e) for x in queue):
                        continue
                rep: dict = {}
                self._guarded(lambda e=e: configure(self.db, e, self.runner, self.policy, others, rep))
                self.report.conffiles += rep.get("conffiles", [])
                queue.remove(e)
                progress = True
            if not progress:
                # a cycle: dpkg breaks it by configuring anyway (findbreakcycle)
                e = queue.pop(0)
                rep = {}
                self._guarded(lambda e=e: configure(self.db, e, self.runner, self.policy, versions, rep))
                self.report.conffiles += rep.get("conffiles", [])
        if triggers:
            self.process_triggers()

    def _needed_by(self, x, e) -> bool:
        for f in ("Pre-Depends", "Depends"):
            for alts in e.relations(f):
                if any(d.name == x.name for d in alts):
                    return True
        return False

    def process_triggers(self) -> None:
        """Run ``postinst triggered`` for every package with pending triggers (``trigproc``)."""
        incorporate(self.db)
        for _ in range(100):  # dpkg's cycle detection gives up eventually as well
            pend = pending_trigger_packages(self.db)
            if not pend:
                return
            for e in pend:
                self.report.triggers.append((e.name, e.triggers_pending))
                self._guarded(lambda e=e: trigproc(self.db, e, self.runner))
        raise OperationFailedError("trigger processing does not terminate (cycle)", where="triggers")

    def install(self, debs) -> Report:
        """``dpkg -i``: unpack all, configure all, process triggers."""
        archives = self._open(debs)
        self.db.open()
        self.db.log("startup archives install")
        entries = self._unpacking(archives, lambda: [self._unpack_one(d) for d in archives])
        self.configure_all(entries)
        return self.report

    def remove(self, names: list[str], purge: bool = False, triggers: bool = True) -> Report:
        """``dpkg -r`` / ``dpkg -P`` of installed packages by name (``name`` or ``name:arch``);
        ``triggers=False`` is ``--no-triggers``."""
        self.db.open()
        self.db.log(f"startup packages {'purge' if purge else 'remove'}")
        for n in names:
            e = self.db.status.find(n)
            if e is None or e.status == "not-installed":
                raise InvalidInputError(f"package '{n}' is not installed", where="remove")
            self.report.actions.append(("purge" if purge else "remove", e.name, e.version, ""))
            self._guarded(lambda e=e: remove_package(self.db, e, self.runner, purge))
        if triggers:
            self.process_triggers()
        return self.report

    def end_run(self) -> None:
        """End one dpkg invocation (``modstatdb_shutdown``): status (with status-old), triggers,
        the journal's cleanup, dpkg.log. The next action starts another invocation, so a
        sequence of actions with ``end_run`` between them leaves the database exactly as that
        sequence of dpkg calls does (apt calls dpkg several times in one upgrade)."""
        self.db.save()

    def commit(self) -> None:
        """End the invocation in progress, if any (:meth:`end_run`), then write what the runner
        keeps for later (the first-boot job of deferred work)."""
        if self.db.running:
            self.end_run()
        finish = getattr(self.runner, "commit", None)
        if finish is not None:
            finish(self.fs)
