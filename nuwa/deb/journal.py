"""dpkg's status journal: ``updates/NNNN`` records written at every state change.

dpkg never rewrites ``status`` for each change. While it works (``lib/dpkg/dbmodify.c``):

- ``modstatdb_open`` for writing creates ``updates/`` if missing, folds any records left by
  an interrupted run into ``status`` (``cleanupdates``: ``writedb`` then unlink them), and
  creates ``updates/tmp.i`` filled with 512 ``#padding`` lines (``createimptmp``: so the
  disk space for the next record is already allocated);
- every ``modstatdb_note`` writes the package's whole stanza (``varbuf_stanza``, no blank
  line after it) into ``tmp.i``, truncates it to that length, renames it to the next
  ``updates/%04d`` name and creates a fresh padded ``tmp.i``; after record 250
  (``MAXUPDATES``) it checkpoints;
- ``modstatdb_checkpoint`` writes ``status`` (``writedb``: ``status-new``, ``status-old`` as
  a backup, rename) and unlinks the records ``0000`` .. of this run;
- ``modstatdb_shutdown`` checkpoints and unlinks ``tmp.i``.

Maintainer scripts run between those steps, so what they read (``dpkg-query`` applies the
journal on top of ``status``: :meth:`nuwa.deb.status.StatusFile.load`) is the state dpkg has
noted so far. :class:`Journal` writes the same files at the same moments through the image's
filesystem model, which makes the database a script sees, and the final one, equal to real
dpkg's.
"""

from __future__ import annotations

from nuwa.deb.status import IMPORTANTFMT, IMPORTANTTMP, MAXUPDATES, UPDATESDIR, PkgEntry, journal_names

#: ``createimptmp``: the placeholder contents of ``tmp.i``
PADDING = b"#padding\n" * 512


class Journal:
    """The ``updates/`` directory of one dpkg run (open, note, checkpoint, shutdown)."""

    def __init__(self, db):
        self.db = db
        self.fs = db.fs
        self.dir = f"{db.admindir}/{UPDATESDIR}"
        self.tmp = f"{self.dir}/{IMPORTANTTMP}"
        self.next = 0  # ``nextupdate``
        self.is_open = False
        self.wanted = False  # a run has started: open at the first note
        self.records = 0  # written in this Journal's life (for reports and tests)
        self.checkpoints = 0

    def open(self) -> None:
        """``modstatdb_open(msdbrw_write)``: the directory, leftover records folded, ``tmp.i``."""
        if self.is_open:
            return
        fs = self.fs
        if not fs.lexists(self.dir):
            fs.makedirs(self.dir, 0o755)
        left = journal_names(fs, self.dir)
        if left:  # the status was loaded with them applied: write it, then they go
            self.db.status.save(fs)
            for n in left:
                fs.unlink(f"{self.dir}/{n}")
        self.next = 0
        self._createimptmp()
        self.is_open = True

    def _createimptmp(self) -> None:
        self.fs.write_bytes(self.tmp, PADDING)
        self._mode(self.tmp)

    def _mode(self, path: str) -> None:
        # fopen(..., "w") under dpkg's umask 022
        try:
            self.fs.chmod(path, 0o644)
        except OSError:
            pass

    def note(self, entry: PkgEntry) -> None:
        """``modstatdb_note_core``: one record with the package's stanza as it is now."""
        if not self.is_open:
            if not self.wanted:
                return
            self.open()
        fs = self.fs
        fs.write_bytes(self.tmp, entry.render().encode("utf-8", "surrogateescape"))
        fs.rename(self.tmp, f"{self.dir}/{IMPORTANTFMT.format(self.next)}")
        self.next += 1
        self.records += 1
        if self.next > MAXUPDATES:
            self.checkpoint()
        self._createimptmp()

    def checkpoint(self) -> None:
        """``modstatdb_checkpoint``: ``status`` written, this run's records removed."""
        fs = self.fs
        self.db.status.save(fs)
        for i in range(self.next):
            fs.unlink(f"{self.dir}/{IMPORTANTFMT.format(i)}")
        self.next = 0
        self.checkpoints += 1

    def shutdown(self) -> None:
        """``modstatdb_shutdown``: a last checkpoint, then ``tmp.i`` goes."""
        if not self.is_open:
            return
        self.checkpoint()
        try:
            self.fs.unlink(self.tmp)
        except FileNotFoundError:
            pass
        self.is_open = self.wanted = False
