"""``nuwa patch``: apply local .deb files to an image offline (docs/cli.md).

``nuwa patch IMAGE --deb FILE... (--output OUT | --in-place | --dry-run)`` is
``apt install ./FILE...`` on the image's root filesystem; the job is
:meth:`nuwa.api.Image.patch` (:func:`nuwa.patch.upgrade.install_local_debs`). With
``--upgrade``, ``--full-upgrade``, ``--security-only``, ``--install`` or ``--remove`` it is
:meth:`nuwa.api.Image.upgrade`. Both are apt's job (:mod:`nuwa.patch.upgrade`): apt's plan and
apt's order of dpkg calls. This module parses the options, calls the job and prints the report
(:mod:`nuwa.patch.report`): ``--json`` on stdout, a human summary otherwise.
Several images (or ``--from-file``, ``--output-dir``,
``--workers``, ``--scheduler``) make a fleet run (:func:`run_fleet`, :mod:`nuwa.fleet`):
one task per image on Dask, a fleet summary, and the worst image's exit code.
"""

from __future__ import annotations

import contextlib
import gc
import sys

import nuwa
from nuwa.errors import InvalidInputError, cap_message
from nuwa.patch.jsontext import dumps
from nuwa.patch.debfiles import open_debs
from nuwa.patch.report import check_report_path, write_report
from nuwa.patch.staging import check_target

def apt_request(args):
    """The apt-side request of the command line (None for plain ``--deb``); refuses mixtures."""
    # late: the repository code (and OpenPGP) loads only for apt's job (start-up speed)
    from nuwa.patch.upgrade import UpgradeRequest  # (late, see above)

    asked = [flag for flag, on in (("--upgrade", args.upgrade), ("--full-upgrade", args.full_upgrade),
                                   ("--install", args.install), ("--remove", args.remove),
                                   ("--purge", args.purge)) if on]
    if args.security_only and not (args.upgrade or not asked):
        raise InvalidInputError("--security-only goes with --upgrade (or alone)")
    if args.security_only and not asked:
        asked = ["--upgrade"]
    if len(asked) > 1:
        raise InvalidInputError(f"{asked[0]} and {asked[1]} cannot be combined in one run")
    if args.deb and asked:
        raise InvalidInputError(f"--deb and {asked[0]} cannot be combined (yet): give the packages as --deb files")
    if not asked:
        return None
    flag = asked[0]
    names = tuple(args.install or args.remove or args.purge)
    return UpgradeRequest(action=flag[2:], names=names, security_only=args.security_only)


def check_options(args) -> None:
    """Refuse a run with nothing to apply (exit 2)."""
    if not args.deb and apt_request(args) is None:
        raise InvalidInputError("nothing to apply: give --deb FILE, --upgrade, --security-only, --install PKG "
                                "or --remove PKG")
    check_report_path(args.report)


def _repo_options(args):
    from nuwa.apt.options import RepoOptions  # late: only for apt's job (start-up speed)

    return RepoOptions(repos=args.repo, keyrings=args.keyring, sources_only=args.sources_only,
                       allow_insecure=args.allow_insecure, allow_expired=args.allow_expired, cache=args.cache,
                       offline=args.offline, quiet=args.quiet or args.json)


#: the cyclic collector's thresholds during a patch job, at least (CPython's: 700, 10, 10)
THRESHOLDS = (50_000, 20, 50)


@contextlib.contextmanager
def fewer_collections():
    """The cyclic garbage collector run less often during one patch job (thresholds restored after).

    A job builds hundreds of thousands of long-lived objects (the overlay's nodes, the ext4
    caches, the scripts' command records, the report); at Python's default thresholds (700, 10,
    10) every 700 allocations start a collection and each full one walks them all. Measured on
    a kernel update (4 .debs, 26,793 command records): 648 collections, 5 of them full, took
    0.53-0.59 s of cpu; with 10000 first, 89 collections, none full, 0.25-0.29 s, and the same
    peak memory (400 MB): the job's garbage is freed by reference counting, not the collector.
    Since session 15 (:data:`THRESHOLDS`) 50,000, and the older generations collected after
    20 and 50 younger collections instead of 10, and what exists once the plan is made frozen
    out of the collector until the job ends (``run_patch``): collector time (``gc.callbacks``)
    had still been 0.16 s of a 2.3 s arm64 upgrade and 0.61 s of a 9 s server upgrade (131
    collections, one full), now 0.10 and 0.23 s; the server upgrade 9.09 -> 8.40 s (median of
    3 interleaved runs), its peak RSS 244-262 MB (248-252 before)."""
    old = gc.get_threshold()
    frozen = gc.get_freeze_count()
    gc.set_threshold(*(max(a, b) for a, b in zip(old, THRESHOLDS)))
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if not frozen:  # what the job froze (run_patch's show_plan) is the collector's again;
            gc.unfreeze()  # a caller's own frozen objects are left as they were


def steady_heap() -> None:
    """Fixed glibc malloc thresholds for this process (mmap above 4 MiB, trim past 16 MiB free).

    glibc raises its mmap threshold to the size of each large block freed (up to 32 MiB) and
    its trim threshold to twice that, so after mkinitramfs frees its 51 MB archive, later
    blocks up to 32 MiB come from the heap and up to 64 MiB of free heap is kept: a kernel
    update's peak RSS was 188-202 MB and `--upgrade` of a cloud server (33 updates, a kernel,
    two mkinitramfs runs) 310-324 MB. With these fixed values: 175-178 MB and 241 MB, time
    inside the noise (1 MiB / 128 KiB defaults cost 0.3-0.6 s more system time). Only on glibc;
    elsewhere nothing is changed. Process-wide and not undone (glibc has no way to read the
    old values back): the command's own process, not the library API, calls it."""
    try:
        import ctypes

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # malloc.h
    mallopt(m_mmap_threshold, 4 << 20)
    mallopt(m_trim_threshold, 16 << 20)


def is_fleet(args) -> bool:
    """A fleet run: several images, a list file, ``--output-dir``, ``--workers`` or ``--scheduler``."""
    return (len(args.images) != 1 or bool(args.from_file) or args.output_dir is not None
            or args.workers is not None or args.scheduler is not None)


def run_fleet(args) -> int:
    """``nuwa patch IMAGE... (--output-dir DIR | --in-place | --dry-run) [--workers N | --scheduler ADDRESS]``:
    one task per image on Dask (docs/fleet.md); exit code: the worst image's."""
    # late: the fleet job (and, when it runs, Dask) loads only for a fleet (start-up speed)
    from nuwa.fleet.images import gather  # (late, see above)
    from nuwa.fleet.job import new_progress, patch_fleet  # (late, see above)

    if args.output:
        raise InvalidInputError("--output names one file: a fleet writes one overlay per image, give --output-dir DIR")
    check_options(args)
    images = gather(args.images, args.from_file)
    request = apt_request(args)
    progress = new_progress(len(images), enabled=not (args.quiet or args.json))
    try:
        report = patch_fleet(images, args.deb if request is None else (), request,
                             _repo_options(args) if request is not None else None,
                             output_dir=args.output_dir, in_place=args.in_place, dry_run=args.dry_run,
                             workers=args.workers, scheduler=args.scheduler, partition=args.partition,
                             unsafe_in_place=args.unsafe_in_place, firstboot_timeout=args.firstboot_timeout,
                             firstboot_job_timeout=args.firstboot_job_timeout, progress=progress,
                             reuse_effects=not args.no_effect_reuse, rebase=args.rebase_onto_patched_base)
    finally:
        progress.close()
    doc = report.to_json()
    if args.report:
        write_report(args.report, doc)
    if args.json:
        print(dumps(doc, indent=1))
    elif not args.quiet:
        for line in report.text_lines():
            print(line)
        sys.stdout.flush()
    for o in report.outcomes:
        if o.outcome == "failed":
            named = o.reason if o.reason.startswith(o.image) else f"{o.image}: {o.reason}"
            print(cap_message(f"nuwa patch: {named}"), file=sys.stderr)
    return report.exit_code


def run_patch(args) -> int:
    """``nuwa patch IMAGE --deb FILE... [--dry-run] [--report FILE] [--output OUT | --in-place] [--json] [--quiet]``
    (several images, ``--from-file``, ``--output-dir``, ``--workers``, ``--scheduler``: :func:`run_fleet`)."""
    if is_fleet(args):
        return run_fleet(args)
    args.image = args.images[0]
    check_options(args)
    if not args.dry_run:
        check_target("patch", args.output, args.in_place)
    request = apt_request(args)
    archives = open_debs(args.deb) if request is None else []  # bad .debs are named before the image is opened

    def show_plan(doc):
        if args.dry_run and not args.json and not args.quiet:
            from nuwa.patch.upgrade import plan_lines  # late: only for apt's job (start-up speed)

            print("plan:")
            for line in plan_lines(doc):
                print("  " + line)
            sys.stdout.flush()
        # what exists now (the image opened, apt's indexes and plan: ~100,000 tracked objects)
        # lives to the end of the job or is freed by reference counting (it holds no cycles
        # that matter): frozen out of the collector, which walked it again in every older
        # collection (0.19 s of a 9 s server upgrade); fewer_collections unfreezes it
        gc.freeze()

    # late: only the patch job draws stages (start-up speed)
    from nuwa.apt.progress import Stages  # (late, see above)

    stages = Stages(sys.stderr, quiet=bool(args.quiet or args.json))  # a no-op unless stderr is a terminal
    # the report's list of changes is shown by --json, --report and the summary's count only
    changes = bool(args.json or args.report or not args.quiet)
    steady_heap()
    with fewer_collections(), nuwa.open(args.image, writable=bool(args.in_place and not args.dry_run),
                                        partition=args.partition, unsafe_in_place=args.unsafe_in_place) as image:
        if request is None:
            report = image.patch(debs=archives, output=args.output, in_place=args.in_place, dry_run=args.dry_run,
                                 report=args.report, firstboot_timeout=args.firstboot_timeout,
                                 firstboot_job_timeout=args.firstboot_job_timeout, repo_options=_repo_options(args),
                                 on_plan=show_plan, progress=stages, changes=changes)
        else:
            report = image.upgrade(request, _repo_options(args), output=args.output, in_place=args.in_place,
                                   dry_run=args.dry_run, report=args.report, on_plan=show_plan,
                                   firstboot_timeout=args.firstboot_timeout,
                                   firstboot_job_timeout=args.firstboot_job_timeout, progress=stages,
                                   changes=changes)
    if args.json:
        print(dumps(report.to_json(), indent=1))
    elif not args.quiet:
        for line in report.summary_lines():
            print(line)
        sys.stdout.flush()
    return 0
