"""The fleet job: patch many images, sharing what they have in common (docs/fleet.md).

:func:`patch_fleet` reads like its sentence:

1. check the request and the targets: one new overlay per image in ``output_dir`` (named after
   it, clashes refused) or every image ``in_place`` (or a ``dry_run``); every ``.deb`` opened
   first -- bad input stops the run before anything is written (exit 2);
2. for ``--upgrade``: read each image's *package state* (:func:`nuwa.fleet.images.state_key`)
   on the client, plan and download **once per distinct state** with one shared
   :class:`nuwa.apt.repository.Repositories` (its cache is content-addressed), and give every
   image the plan of its state; images whose plan is empty are up to date and get no task;
3. run one task per image on Dask (:mod:`nuwa.fleet.engine`; :func:`nuwa.fleet.task.run_image`
   on the workers); an image that fails is reported and the others go on;
4. gather a :class:`FleetReport`: one outcome and report per image, the fleet summary, what
   was shared, and the exit code (the worst image's, see :attr:`FleetReport.exit_code`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from nuwa import api
from nuwa.errors import EXIT_FAILED, InvalidInputError, NuwaError
from nuwa.fleet.engine import FleetProgress, check_workers, run_tasks
from nuwa.fleet.images import chain_of, output_paths, state_key
from nuwa.fleet.rebase import finish_rebase, plan_rebase
from nuwa.fleet.task import OUTCOMES, ImageOutcome, ImageTask, run_image, strip
from nuwa.patch.debfiles import open_debs


@dataclass
class FleetReport:
    """What a fleet run did: ``outcomes`` (one :class:`ImageOutcome` per image, in the order
    given), ``sharing`` (distinct package states, plans computed, downloads) and timings."""

    outcomes: list
    sharing: dict = field(default_factory=dict)
    seconds: float = 0.0
    mode: str = "deb"
    #: ``--rebase-onto-patched-base``: each patched base's entry (as an image's)
    bases: list = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """The worst image's exit code: 0 when none failed, else the highest of the failed
        images' codes (3 corrupt or refused > 2 bad input > 1 failed), as ``nuwa scan`` does."""
        return max((o.exit_code for o in self.outcomes if o.outcome == "failed"), default=0)

    def counts(self) -> dict:
        """Images by outcome (every outcome named, zeros included)."""
        out = {o: 0 for o in OUTCOMES}
        for o in self.outcomes:
            out[o.outcome] += 1
        return out

    def summary(self) -> dict:
        """The fleet summary: counts by outcome, first-boot entries and bytes written in all."""
        return {"images": len(self.outcomes), **self.counts(),
                "packages": sum(o.packages for o in self.outcomes),
                "firstboot_entries": sum(o.firstboot_entries for o in self.outcomes),
                "bytes_written": sum(o.bytes_written for o in self.outcomes),
                "seconds": round(self.seconds, 3)}

    def to_json(self) -> dict:
        """The fleet document (``nuwa patch IMAGE... --json``; schema in docs/fleet.md)."""
        doc = {"mode": self.mode, "images": [o.to_json() for o in self.outcomes], "summary": self.summary(),
               "sharing": self.sharing, "exit_code": self.exit_code}
        if self.bases:
            doc["bases"] = self.bases
        return doc

    def table_lines(self) -> list[str]:
        """The summary table, one row per image, then the totals."""
        rows = [["IMAGE", "OUTCOME", "PACKAGES", "KEPT", "FIRSTBOOT", "BYTES", "DETAIL"]]
        for o in self.outcomes:
            detail = o.reason if o.outcome == "failed" else (o.output or o.note or "")
            rows.append([o.image, o.outcome, str(o.packages), str(len(o.kept_back)), str(o.firstboot_entries),
                         str(o.bytes_written), detail or ""])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
        s = self.summary()
        out.append(f"{s['images']} images: " + ", ".join(f"{s[k]} {k}" for k in OUTCOMES)
                   + f"; {s['firstboot_entries']} first-boot entries; {s['bytes_written']} bytes written; "
                   f"{s['seconds']:.1f} s")
        sh = self.sharing
        if sh.get("package_states") is not None:
            out.append(f"shared: {sh['package_states']} distinct package states, {sh['plans_computed']} plans "
                       f"computed, {sh['debs']} .deb files for {sh['images']} images")
        return [line.rstrip() for line in out]

    def text_lines(self) -> list[str]:
        """The human report: each image's own summary (as ``nuwa patch`` prints it), then the table."""
        # late: the per-image summary lines belong to the patch report (and the simulator it loads)
        from nuwa.patch.report import summary_lines  # (late, see above)

        out = []
        for o in self.outcomes:
            if o.report is not None and o.outcome != "failed":
                out.append(f"== {o.image}")
                out += ["  " + line for line in summary_lines(o.report)]
        return out + self.table_lines()


def _failed(i: int, image: str, output: str | None, err: Exception) -> ImageOutcome:
    code = err.exit_code if isinstance(err, NuwaError) else EXIT_FAILED
    where = f": {err.filename}" if isinstance(err, OSError) and getattr(err, "filename", None) else ""
    reason = str(err) if isinstance(err, NuwaError) else f"{getattr(err, 'strerror', None) or err}{where}"
    return ImageOutcome(i, image, "failed", output=output, reason=reason, exit_code=code)


def _plan_fleet(images, outputs, request, repos, salt, partition, tasks_base, done, sharing) -> list[ImageTask]:
    """Plan ``--upgrade`` once per package state (see the module note); returns the tasks and
    fills ``done`` with the images settled on the client (up to date, or failed)."""
    # late: the planner (apt's code and the package engine) loads only for apt's job
    from nuwa.patch.upgrade import prepare_upgrade

    groups: dict[str, list[tuple[int, str]]] = {}
    for i, (img, out) in enumerate(zip(images, outputs)):
        source = out if out is not None and os.path.lexists(out) else img
        # in place, the image is opened writable here already: a journal left by a killed
        # earlier run is replayed before anything else (a read-only open refuses to replay it)
        writable = out is None and not tasks_base["dry_run"]
        try:
            with api.open(source, writable=writable, partition=partition,
                          unsafe_in_place=tasks_base["unsafe_in_place"]) as image:
                groups.setdefault(state_key(image.root(), salt), []).append((i, source))
        except (NuwaError, OSError) as e:
            done[i] = _failed(i, img, out, e)
    tasks, debs = [], set()
    for key, members in groups.items():
        try:
            with api.open(members[0][1], partition=partition) as image:
                prepared = prepare_upgrade(image, request, repos)
        except (NuwaError, OSError) as e:  # unsatisfiable, unsigned, offline...: every image of the state
            for i, _ in members:
                done[i] = _failed(i, images[i], outputs[i], e)
            continue
        debs.update(prepared.debs)
        for i, source in members:
            img, out = images[i], outputs[i]
            if prepared.nothing_to_do:
                kept = dict(prepared.doc.get("kept_back") or {})
                note = f"already patched: {out}" if source != img else "nothing to do"
                done[i] = ImageOutcome(i, img, "kept-back" if kept else "up-to-date", kept_back=kept, note=note,
                                       report={"image": source, "plan": prepared.doc, "nothing_to_do": True})
            elif source != img:
                done[i] = ImageOutcome(i, img, "failed", output=out, exit_code=2,
                                       reason=f"{out}: output exists (refusing to overwrite it)")
            else:
                tasks.append(ImageTask(index=i, image=img, output=out, mode="upgrade", prepared=prepared, key=key,
                                       salt=salt, **tasks_base))
    sharing.update({"images": len(images), "package_states": len(groups), "plans_computed": len(groups),
                    "debs": len(debs)})
    return tasks


def patch_fleet(images, debs=(), request=None, repo_options=None, *,
                output_dir: str | None = None, in_place: bool = False, dry_run: bool = False,
                workers: int | None = None, scheduler: str | None = None, partition: int | None = None,
                unsafe_in_place: bool = False, firstboot_timeout: int | None = None,
                firstboot_job_timeout: int | None = None, progress=None, repositories=None,
                reuse_effects: bool = True, rebase: bool = False) -> FleetReport:
    """Patch every image of ``images`` (paths) with ``debs`` (``--deb``) or ``request`` (a
    :class:`nuwa.patch.upgrade.UpgradeRequest`: ``--upgrade`` and friends, with
    ``repo_options``, a :class:`nuwa.apt.repository.RepoOptions`); see the module note and
    docs/fleet.md.

    ``progress`` is a :class:`nuwa.fleet.engine.FleetProgress` (or anything with ``update(outcome)``);
    ``workers``/``scheduler`` choose where the tasks run (:func:`nuwa.fleet.engine.run_tasks`);
    ``reuse_effects=False`` computes every image itself (no effect reuse, docs/fleet.md);
    ``rebase`` patches each base once and moves its overlays onto it -- the untouched ones as
    empty overlays, those with changes of their own at file level when the changes touch
    nothing the patch did (``--rebase-onto-patched-base``, :mod:`nuwa.fleet.rebase`). Returns the
    :class:`FleetReport`; raises only for bad input of the whole run (exit 2).
    """
    start = time.monotonic()
    given = [os.fspath(p) for p in images]
    images = given
    if bool(debs) == (request is not None):
        raise InvalidInputError("a fleet run needs either .deb files or an apt request (--upgrade...), not both")
    chosen = [name for name, on in (("--output-dir", output_dir), ("--in-place", in_place), ("--dry-run", dry_run))
              if on]
    if len(chosen) != 1:
        raise InvalidInputError("a fleet writes one new overlay per image: give --output-dir DIR "
                                "(or --in-place, or --dry-run)" if not chosen else
                                f"{chosen[0]} and {chosen[1]} cannot be combined")
    if rebase and not output_dir:
        raise InvalidInputError("--rebase-onto-patched-base writes a patched base and new overlays beside it: "
                                "give --output-dir DIR")
    outputs = output_paths(images, output_dir) if output_dir else [None] * len(images)
    # absolute paths: a worker of a real cluster has its own working directory
    images = [os.path.abspath(p) for p in images]
    outputs = [None if o is None else os.path.abspath(o) for o in outputs]
    base = {"dry_run": dry_run, "partition": partition, "unsafe_in_place": unsafe_in_place,
            "firstboot_timeout": firstboot_timeout, "firstboot_job_timeout": firstboot_job_timeout}
    done: dict[int, ImageOutcome] = {}
    sharing: dict = {}
    check_workers(workers)
    archives = open_debs(debs) if request is None else []  # a bad .deb is named before any image is touched
    if request is None:
        paths = [os.path.abspath(a.path) for a in archives]
        tasks = [ImageTask(index=i, image=img, output=out, mode="deb", debs=paths, **base)
                 for i, (img, out) in enumerate(zip(images, outputs))]
        sharing.update({"images": len(images), "debs": len(paths)})
    else:
        # late: apt's repository code (and OpenPGP) loads only for apt's job, not for --deb
        from nuwa.apt.repository import Repositories

        repos = repositories or Repositories(repo_options)
        salt = repr((request.action, tuple(request.names), request.security_only))
        try:
            tasks = _plan_fleet(images, outputs, request, repos, salt, partition, base, done, sharing)
        finally:
            if repositories is None:
                repos.close()
    sharing["planning_seconds"] = round(time.monotonic() - start, 3)
    for o in done.values():
        if progress is not None:
            progress.update(o.outcome)

    def lost(task: ImageTask, why: str) -> ImageOutcome:
        return ImageOutcome(task.index, task.image, "failed", output=task.output, exit_code=EXIT_FAILED,
                            reason=f"the workers running this image died ({why})")

    def finished(o: ImageOutcome) -> None:
        if progress is not None and o.index < len(images):  # a patched base is not one of the images
            progress.update(o.outcome)

    bases, moved, followers = [], {}, {}
    # each image's backing chain, read once: the effect groups and the rebase's families
    chains = [chain_of(t.image) for t in tasks] if (reuse_effects or rebase) else [(None, False)] * len(tasks)
    if rebase:
        bases, moved, followers = plan_rebase(tasks, chains, os.path.abspath(output_dir), images, outputs,
                                              len(images))
    # what runs on Dask: the images not moved, then the patched bases (leaders of their families)
    run = [t for pos, t in enumerate(tasks) if pos not in moved] + bases
    at = {t.index: i for i, t in enumerate(run)}
    leaders = {at[tasks[pos].index]: at[bases[b].index] for pos, b in followers.items()}
    if reuse_effects:
        bottoms = {t.index: chain[0] for t, chain in zip(tasks, chains)}
        leaders.update(_effect_groups(run, bottoms, skip=set(leaders) | {at[b.index] for b in bases}))
    for b in bases:
        b.lead = reuse_effects
    # a follower whose image and leader's both allocated nothing over one bottom gets a copy of the
    # leader's output (nuwa.patch.effect): milliseconds, which the client may take on itself
    untouched = {t.index for t, chain in zip(tasks, chains) if chain[1]}
    quick = {pos for pos, lead in leaders.items()
             if run[pos].index in untouched and run[lead].index in untouched and run[pos].output is not None
             and not run[pos].dry_run}
    for o in run_tasks(run_image, run, workers=workers, scheduler=scheduler, on_result=finished, on_lost=lost,
                       follow=(run_image, strip, leaders), quick=quick, copies=copies, preload=WORKER_PRELOAD):
        done[o.index] = o
    sizes: dict = {}  # each patched base's guest size, read once for all its overlays
    for pos, b in moved.items():
        o = finish_rebase(tasks[pos], bases[b], done[bases[b].index], sizes)
        done[o.index] = o
        finished(o)
    sharing.update(_effects_summary(list(done.values()), leaders))
    if rebase:
        sharing["rebased"] = len(moved)
        sharing["moved"] = sum(1 for o in done.values() if (o.sharing or "").startswith("moved onto"))
    report = FleetReport([done[i] for i in range(len(images))], sharing, time.monotonic() - start,
                         "deb" if request is None else request.action,
                         bases=[done[b.index].to_json() for b in bases])
    for o, name in zip(report.outcomes, given):  # the names as the caller gave them
        o.image = name
    return report


#: what a worker computing an image imports (late, in nuwa.fleet.task): the embedded cluster's
#: workers start with it, imported once by their forkserver
WORKER_PRELOAD = ("nuwa.patch.upgrade",)


def copies(lead: ImageOutcome) -> bool:
    """Whether a leader's outcome holds what its untouched followers copy: an effect with the
    output its job wrote (``nuwa.patch.effect``)."""
    return lead.effect is not None and lead.effect.output is not None


def _effect_groups(tasks: list[ImageTask], bottoms: dict, skip=frozenset()) -> dict[int, int]:
    """Effect reuse: ``{follower position: leader position}`` in ``tasks`` (positions in
    ``skip`` left out; ``bottoms``: image index -> the bottom of its backing chain). Tasks whose
    images share that bottom (and, for ``--upgrade``, one package state and so one plan) form a
    group; its first task records its effect, the others replay it."""
    groups: dict[tuple, list[int]] = {}
    for pos, t in enumerate(tasks):
        if pos in skip:
            continue
        base = bottoms.get(t.index)
        if base is not None:
            groups.setdefault((base, t.key), []).append(pos)
    leaders = {}
    for members in groups.values():
        if len(members) > 1:
            tasks[members[0]].lead = True
            leaders.update({pos: members[0] for pos in members[1:]})
    return leaders


def _effects_summary(outcomes, leaders: dict) -> dict:
    """The ``sharing`` counts of effect reuse (docs/fleet.md)."""
    counts = {"effect_groups": len(set(leaders.values())), "effects_recorded": 0, "effects_replayed": 0,
              "effects_computed": 0}
    for o in outcomes:
        s = (o.sharing or "").rsplit("; ", 1)[-1]  # "patched one by one: WHY; replayed from ..."
        if s == "recorded":
            counts["effects_recorded"] += 1
        elif s.startswith("replayed"):
            counts["effects_replayed"] += 1
        elif s.startswith("computed"):
            counts["effects_computed"] += 1
    return counts


def new_progress(total: int, enabled: bool) -> FleetProgress:
    """The fleet's bar on stderr (shown only on a terminal; ``enabled=False`` for --quiet/--json)."""
    return FleetProgress(total, OUTCOMES, enabled=enabled)
