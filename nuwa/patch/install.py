"""``dpkg -i`` of local .debs with maintainer scripts simulated: the one wiring of the engine.

The package engine (:class:`nuwa.deb.operations.Dpkg`) and the script simulator
(:class:`nuwa.patch.runner.SimulatorRunner`) are wired the same way by ``nuwa patch`` and by
the end-to-end tests: one runner for the whole run (so the command models share their state
and deferred work lands in one first-boot job), ``install`` (unpack all, configure all, process
triggers), then ``Dpkg.commit`` -- the package database and the first-boot job go into ``fs``.
``fs`` is normally an :class:`nuwa.fs.overlay.Overlay`; committing *that* (to the image) is
the caller's business, so a failure here leaves nothing but the overlay to discard.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Applied:
    """What :func:`install_debs` did: the engine (database, report) and the script runner."""

    dpkg: object  # nuwa.deb.operations.Dpkg
    runner: object  # nuwa.patch.runner.SimulatorRunner

    @property
    def report(self):
        """The engine's :class:`nuwa.deb.operations.Report` (actions, conffiles, triggers...)."""
        return self.dpkg.report


def install_debs(fs, debs, runner=None, **dpkg_options) -> Applied:
    """``dpkg -i debs`` on ``fs`` with scripts interpreted; the database and job are written to ``fs``.

    ``debs`` are paths or opened :class:`nuwa.deb.archive.DebArchive`; ``dpkg_options`` go to
    :class:`nuwa.deb.operations.Dpkg` (``conffile_policy``, ``admindir``...). Any package error
    propagates (a :class:`nuwa.errors.NuwaError`); ``fs`` then holds partial work to discard.
    """
    from nuwa.deb.operations import Dpkg
    from nuwa.patch.runner import SimulatorRunner

    runner = runner if runner is not None else SimulatorRunner()
    d = Dpkg(fs, runner, **dpkg_options)
    d.install(debs)
    d.commit()
    return Applied(d, runner)
