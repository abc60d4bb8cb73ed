"""``nuwa patch``: apply local .deb files to an image offline (docs/cli.md).

``nuwa patch IMAGE --deb FILE... (--output OUT | --in-place | --dry-run)`` is ``dpkg -i`` on
the image's root filesystem; the job is :meth:`nuwa.api.Image.patch`
(:func:`nuwa.patch.install.patch_image`). This module parses the options, calls it and prints
the report (:mod:`nuwa.patch.report`): ``--json`` on stdout, a human summary otherwise.
Repository options (``--repo``, ``--upgrade``, ``--security-only``, ``--install``,
``--remove``) are refused for now with exit 2.
"""

from __future__ import annotations

import json
import sys

import nuwa
from nuwa.errors import InvalidInputError
from nuwa.patch.install import open_debs
from nuwa.patch.report import check_report_path
from nuwa.patch.staging import check_target

#: options of the full command line that need repository access (a later step)
NOT_YET = (("repo", "--repo"), ("upgrade", "--upgrade"), ("security_only", "--security-only"),
           ("install", "--install"), ("remove", "--remove"))


def check_options(args) -> None:
    """Refuse the options that are not available yet, and a run with nothing to apply (exit 2)."""
    for attr, flag in NOT_YET:
        if getattr(args, attr, None):
            raise InvalidInputError(f"{flag} is not available yet (repository access comes later); "
                                    "only --deb FILE is supported")
    if not args.deb:
        raise InvalidInputError("nothing to apply: give --deb FILE (one or more)")
    check_report_path(args.report)


def run_patch(args) -> int:
    """``nuwa patch IMAGE --deb FILE... [--dry-run] [--report FILE] [--output OUT | --in-place] [--json] [--quiet]``."""
    check_options(args)
    if not args.dry_run:
        check_target("patch", args.output, args.in_place)
    archives = open_debs(args.deb)  # bad .debs are named before the image is opened
    with nuwa.open(args.image, writable=bool(args.in_place and not args.dry_run), partition=args.partition,
                    unsafe_in_place=args.unsafe_in_place) as image:
        report = image.patch(debs=archives, output=args.output, in_place=args.in_place, dry_run=args.dry_run,
                             report=args.report, firstboot_timeout=args.firstboot_timeout,
                             firstboot_job_timeout=args.firstboot_job_timeout)
    if args.json:
        print(json.dumps(report.to_json(), indent=1))
    elif not args.quiet:
        for line in report.summary_lines():
            print(line)
        sys.stdout.flush()
    return 0
