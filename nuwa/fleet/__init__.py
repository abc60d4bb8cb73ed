"""Fleets: patch many images in one run, sharing the work, on Dask (docs/fleet.md).

The library side of ``nuwa patch IMAGE... --output-dir DIR | --in-place``::

    import nuwa.fleet
    report = nuwa.fleet.patch(["a.qcow2", "b.qcow2"], debs=["x.deb"], output_dir="out", workers=2)
    report.counts()          # {"patched": 2, "up-to-date": 0, "kept-back": 0, "failed": 0}
    report.to_json()         # what ``nuwa patch a.qcow2 b.qcow2 ... --json`` prints
    report.exit_code         # the worst image's exit code

Layer: above :mod:`nuwa.patch` and :mod:`nuwa.api`, below :mod:`nuwa.cmd`. Importing this
package does not load Dask; a run does (:mod:`nuwa.fleet.engine`).
"""

from __future__ import annotations

from nuwa.fleet.images import gather, output_name, read_list, state_key  # noqa: F401  (re-exported)

#: names re-exported from the heavier modules, loaded on first use (see ``__getattr__``)
_JOB = ("FleetReport", "patch_fleet", "new_progress")
_TASK = ("ImageOutcome", "OUTCOMES", "run_image")


def __getattr__(name: str):
    """The heavier re-exports, imported on first use: ``nuwa.fleet.images`` (list files, output
    names) stays importable without the simulator and the repository code behind a run."""
    if name in _JOB:
        # late: the job pulls in the patch job and apt's repository code (start-up speed)
        from nuwa.fleet import job  # (late, see above)

        return getattr(job, name)
    if name in _TASK:
        # late: the task pulls in the patch job and the simulator (start-up speed)
        from nuwa.fleet import task  # (late, see above)

        return getattr(task, name)
    if name == "UpgradeRequest":
        # late: the request lives with apt's job (start-up speed)
        from nuwa.patch.upgrade import UpgradeRequest  # (late, see above)

        return UpgradeRequest
    raise AttributeError(f"module 'nuwa.fleet' has no attribute {name!r}")


def patch(images, debs=(), upgrade=None, repo_options=None, output_dir=None, in_place: bool = False,
          dry_run: bool = False, workers: int | None = None, scheduler: str | None = None, progress=None,
          **options):
    """Patch every image of ``images`` with ``debs`` (.deb paths) or ``upgrade`` (an
    :class:`nuwa.patch.upgrade.UpgradeRequest`, or True for a plain ``upgrade``); returns a :class:`FleetReport`.

    Exactly one of ``output_dir`` (one new qcow2 overlay per image, named after it),
    ``in_place`` or ``dry_run``. ``workers`` is the size of the embedded Dask cluster (default:
    the core count; 0 runs in this process), ``scheduler`` the address of a running Dask
    cluster instead. ``repo_options`` (:class:`nuwa.apt.repository.RepoOptions`) as for
    :meth:`nuwa.api.Image.upgrade`; ``options``: ``partition``, ``unsafe_in_place``,
    ``firstboot_timeout``, ``firstboot_job_timeout``, ``repositories``, ``reuse_effects``
    (default True: alike images replay one image's effect, docs/fleet.md). Returns a
    :class:`nuwa.fleet.job.FleetReport`.
    """
    # late: the job pulls in the patch job and apt's repository code (start-up speed)
    from nuwa.fleet.job import patch_fleet  # (late, see above)
    from nuwa.patch.upgrade import UpgradeRequest  # (late, see above)

    request = UpgradeRequest() if upgrade is True else (upgrade or None)
    if isinstance(debs, str):  # one path, not a sequence of characters
        debs = [debs]
    return patch_fleet(list(images), list(debs), request, repo_options, output_dir=output_dir, in_place=in_place,
                       dry_run=dry_run, workers=workers, scheduler=scheduler, progress=progress, **options)
