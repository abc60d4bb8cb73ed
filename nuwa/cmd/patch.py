"""``nuwa patch``: apply local .deb files to an image offline (docs/cli.md).

``nuwa patch IMAGE --deb FILE... (--output OUT | --in-place | --dry-run)`` is ``dpkg -i`` on
the image's root filesystem: every archive is unpacked, then every package configured, then
pending triggers processed (:func:`nuwa.patch.install.install_debs`), maintainer scripts
interpreted by the shell simulator and deferred work put into the first-boot job. All of it
happens in one :class:`nuwa.fs.overlay.Overlay`; any package error discards the overlay, so
nothing is written (exit 1, one line naming the package). Otherwise the overlay is committed
through :mod:`nuwa.patch.staging` -- a new qcow2 overlay at ``--output`` (backing file = IMAGE)
or IMAGE itself with ``--in-place`` -- unless ``--dry-run``.

The report (``--json`` on stdout, ``--report FILE`` on the host) is one JSON document: the
package actions with old and new versions, conffile decisions, every maintainer script run and
what became of its commands, the first-boot job, and every changed path. Repository options
(``--repo``, ``--upgrade``, ``--security-only``, ``--install``, ``--remove``) are refused for
now with exit 2.
"""

from __future__ import annotations

import json
import os
import sys

from nuwa.errors import InvalidInputError, NuwaError, OperationFailedError

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
    if args.report and os.path.isdir(args.report):
        raise InvalidInputError("the report path is a directory", where=args.report)
    if args.report and not os.path.isdir(os.path.dirname(os.path.abspath(args.report))):
        raise InvalidInputError("the report's directory does not exist", where=args.report)


def open_debs(paths: list[str]) -> list:
    """Open (and check the headers of) every .deb before anything is created (bad input: exit 2)."""
    from nuwa.deb.archive import open_deb

    out = []
    for p in paths:
        try:
            out.append(open_deb(p))
        except NuwaError:
            raise
        except OSError as e:  # permission, I/O: named with the file
            raise InvalidInputError(f"cannot read the .deb ({e.strerror or e})", where=p) from None
    return out


def _named(err: NuwaError, archives) -> NuwaError:
    """The error, with the package named if its message does not name one already."""
    msg = str(err)
    names = [a.package for a in archives] + [os.path.basename(a.where) for a in archives]
    if any(n and n in msg for n in names):
        return err
    cls = type(err)
    try:
        return cls(f"{msg} (while installing {', '.join(a.package for a in archives)})")
    except TypeError:  # an error class with another signature: keep it as it is
        return err


def _deferred_command_json(d) -> dict:
    return {"argv": d.argv, "cwd": d.cwd, "line": d.line, "reason": d.reason}


def build_report(args, archives, applied, changes, target) -> dict:
    """The JSON document of a run (``--json`` and ``--report``)."""
    rep = applied.report
    runner = applied.runner
    entry_ids = {i: ids for i, ids in runner.job_entries}
    scripts = []
    for i, c in enumerate(runner.results):
        s = {"package": c.package, "script": c.script_name, "args": c.args, "status": c.status,
             "deferred_whole": c.deferred_whole, "reason": c.reason, "firstboot_entries": entry_ids.get(i, [])}
        if c.result is not None and not c.deferred_whole:
            s["commands"] = c.result.record.to_json()
            s["deferred_commands"] = [_deferred_command_json(d) for d in c.result.deferred_commands]
        scripts.append(s)
    job = runner.job
    # the job's write (in Dpkg.commit) marks its entries as stored: the runner knows which it added
    new_ids = [i for _, ids in runner.job_entries for i in ids]
    return {
        "image": args.image,
        "debs": [{"file": p, "package": a.package, "version": a.control.get("Version", ""),
                  "architecture": a.control.get("Architecture", "")} for p, a in zip(args.deb, archives)],
        "dry_run": bool(args.dry_run),
        "written": None if target is None else {"path": target, "in_place": bool(args.in_place)},
        "packages": [{"action": a, "package": p, "old_version": o or None, "new_version": n or None}
                     for a, p, o, n in rep.actions],
        "conffiles": [{"package": p, "path": f, "decision": d} for p, f, d in rep.conffiles],
        "replaced": [{"package": p, "path": f} for p, f in rep.replaced],
        "disappeared": [list(x) if isinstance(x, (tuple, list)) else x for x in rep.disappeared],
        "triggers": [{"package": p, "triggers": t} for p, t in rep.triggers],
        "counts": runner.counts(),
        "scripts": scripts,
        "firstboot": None if job is None or not new_ids else job.to_json() | {"new_entries": new_ids},
        "changes": [c.to_json() for c in changes],
    }


def summary_lines(doc: dict) -> list[str]:
    """The human summary of a run (stdout)."""
    out = []
    for p in doc["packages"]:
        if p["old_version"]:
            out.append(f"{p['action']}: {p['package']} {p['old_version']} -> {p['new_version']}")
        else:
            out.append(f"{p['action']}: {p['package']} {p['new_version']}")
    for c in doc["conffiles"]:
        out.append(f"conffile {c['path']} ({c['package']}): {c['decision']}")
    for r in doc["replaced"]:
        out.append(f"replaced: {r['path']} taken over from {r['package']}")
    for s in doc["scripts"]:
        line = f"script: {s['package']} {s['script']} {' '.join(s['args'])}".rstrip() + f" -> {s['status']}"
        if s["deferred_whole"]:
            line += f" (deferred to first boot: {s['reason']})"
        out.append(line)
        for e in (s.get("commands") or {}).get("commands", []):
            if e.get("classification") == "dropped":
                out.append(f"  dropped: line {e.get('line')}: {' '.join(e.get('argv') or [])[:200]}: {e.get('reason')}")
        for d in s.get("deferred_commands", []):
            out.append(f"  deferred: line {d['line']}: {' '.join(d['argv'])[:200]}: {d['reason']}")
    c = doc["counts"]
    out.append(f"{c['scripts']} maintainer scripts ({c['deferred_whole']} deferred whole); commands: "
               f"{c['simulated']} simulated, {c['dropped']} dropped, {c['deferred']} deferred to first boot")
    job = doc["firstboot"]
    if job is not None:
        act = job.get("activation") or []
        how = ("activated by " + " and ".join(act)) if act else \
            "NOT activated: the image has neither systemd nor /etc/init.d; run /var/lib/nuwa/firstboot/run at boot"
        out.append(f"first-boot job: {len(job.get('entries', []))} entries ({len(job['new_entries'])} new) in "
                   f"/var/lib/nuwa/firstboot, {how}")
        for e in job.get("entries", []):
            if e.get("id") in job["new_entries"]:
                out.append(f"  job entry {e.get('id')}: {e.get('label', '')}")
    n = len(doc["changes"])
    w = doc["written"]
    if w is None:
        out.append(f"dry run: nothing written ({n} paths would change)")
    elif w["in_place"]:
        out.append(f"{n} paths changed in {w['path']} (in place)")
    else:
        out.append(f"wrote {w['path']} ({n} paths changed; {doc['image']} unchanged)")
    return out


def write_report(path: str, doc: dict) -> None:
    """Write the JSON document to a host file (replaced whole: written aside, then renamed).

    Written before the image is committed, so that "exit 1: nothing written" holds for the
    report too; the caller removes it if the commit then fails."""
    tmp = path + ".nuwa-tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OperationFailedError(f"cannot write the report ({e.strerror or e})", where=path) from None


def run_patch(args) -> int:
    """``nuwa patch IMAGE --deb FILE... [--dry-run] [--report FILE] [--output OUT | --in-place] [--json] [--quiet]``."""
    from nuwa.patch.staging import check_target, staged
    from nuwa.patch.install import install_debs

    check_options(args)
    if not args.dry_run:
        check_target(args, "patch")
    archives = open_debs(args.deb)
    wrote_report = False
    try:
        with staged(args, "patch", dry_run=args.dry_run) as st:
            try:
                applied = install_debs(st.fs, archives)
            except NuwaError as e:
                raise _named(e, archives) from None
            except OSError as e:  # the filesystem model's errno (ENOSPC...): one line, exit 1
                where = f": {e.filename}" if getattr(e, "filename", None) else ""
                raise _named(OperationFailedError(f"{e.strerror or e}{where}"), archives) from None
            doc = build_report(args, archives, applied, st.fs.changes(), st.target)
            if args.report:  # before the commit: a report that cannot be written cancels the run
                write_report(args.report, doc)
                wrote_report = True
    except BaseException:
        if wrote_report:  # the commit failed: no report of a run that wrote nothing
            os.unlink(args.report)
        raise
    if args.json:
        print(json.dumps(doc, indent=1))
    elif not args.quiet:
        for line in summary_lines(doc):
            print(line)
        sys.stdout.flush()
    return 0
