"""Configuring unpacked packages and processing triggers (dpkg ``deferred_configure``, ``trigproc``).

Configure (``src/main/configure.c``): ``configure`` logged; the package's ``activate``
triggers fire; from ``unpacked`` each conffile is settled (:mod:`nuwa.deb.conffiles`) and the
package goes ``half-configured``; ``postinst configure CONFIG-VERSION`` runs (empty when the
package was never configured); then ``post_postinst_tasks``: ``triggers-awaited`` if it awaits
triggers, ``triggers-pending`` if it has pending ones, else ``installed``, and
``Config-Version`` is left as it was (it becomes the version when ``status`` is next parsed).

Trigger processing (``src/main/trigproc.c``): for a package with pending triggers,
``trigproc`` is logged, the state goes ``half-configured`` (clearing the pending list), and
``postinst triggered "NAMES"`` runs; then ``post_postinst_tasks`` as above, and packages that
awaited it move on.
"""

from __future__ import annotations

from nuwa.deb.conffiles import configure_conffile
from nuwa.deb.deps import unsatisfied_depends
from nuwa.deb.status import PkgEntry
from nuwa.deb.triggers import parse_triggers_ci, record_activation
from nuwa.deb.unpack import ScriptFailed, activate_packageprocessing, activate_path
from nuwa.errors import OperationFailedError


def incorporate(db) -> None:
    """dpkg ``trig_incorporate``: activations deferred in ``triggers/Unincorp`` enter the status."""
    for trig, awaiters in db.triggers.take_unincorp():
        for it in db.triggers.named.get(trig, []):
            pend = db.status.find(it.package)
            if pend is None:
                continue
            for a in awaiters:
                aw = None if a == "-" or it.noawait else db.status.find(a)
                record_activation(db, pend, trig, aw)


def post_postinst(db, entry: PkgEntry) -> None:
    """``post_postinst_tasks(pkg, PKG_STAT_INSTALLED)``."""
    if entry.triggers_awaited:
        db.set_state(entry, "triggers-awaited")
    elif entry.triggers_pending:
        db.set_state(entry, "triggers-pending")
    else:
        db.set_state(entry, "installed")
    incorporate(db)


def configure(db, entry: PkgEntry, runner, policy: str = "old", extra: dict | None = None, report=None) -> None:
    """Configure one package that is unpacked or half-configured."""
    where = f"package {entry.nonambig()}"
    if entry.status == "not-installed":
        raise OperationFailedError(f"no package named '{entry.name}' is installed, cannot configure", where=where)
    if entry.status == "installed":
        raise OperationFailedError(f"package {entry.name} is already installed and configured", where=where)
    if entry.status not in ("unpacked", "half-configured"):
        raise OperationFailedError(f"package {entry.name} is not ready for configuration (current status "
                                   f"'{entry.status}')", where=where)
    missing = unsatisfied_depends(db, entry, extra or {})
    if missing:
        raise OperationFailedError("dependency problems - leaving unconfigured: " + "; ".join(missing), where=where)
    if entry.eflag == "reinstreq":
        raise OperationFailedError("package is in a very bad inconsistent state; you should reinstall it before "
                                   "attempting configuration", where=where)
    # dpkg logs pkg->available: the archive's version when this run unpacked it, else <none>
    db.log(f"configure {db.name_always(entry)} {entry.version} {db.available.get(id(entry), '<none>')}")
    activate_packageprocessing(db, entry)
    if entry.status == "unpacked":
        db.note(entry)
        cfs = entry.conffiles
        results = []
        for c in cfs:
            if c.obsolete or c.remove_on_upgrade:
                continue
            res = configure_conffile(db, entry, c, policy, lambda p: activate_path(db, p, entry))
            results.append(res)
            if res[1] != "absent":  # deferred_configure_conffile notes each new hash
                entry.set_conffiles(cfs)
                db.note(entry)
        entry.set_conffiles(cfs)
        if report is not None:
            report.setdefault("conffiles", []).extend((entry.name, p, a) for p, a in results if a != "absent")
        db.set_state(entry, "half-configured")
    prev = entry.config_version
    rc = db.run_script(runner, entry, "postinst", ["configure", prev])
    if rc != 0:
        raise ScriptFailed(f"installed post-installation script subprocess returned error exit status {rc}",
                           where=where)
    # dpkg leaves configversion alone here: it only becomes the version when the status file
    # is next parsed with the package installed (parse.c), so a package that ends this run
    # triggers-awaited still shows the Config-Version it was configured from
    post_postinst(db, entry)


def trigproc(db, entry: PkgEntry, runner) -> None:
    """Process the pending triggers of one package."""
    names = entry.triggers_pending
    if not names:
        db.clear_awaiters(entry)
        return
    # log_action, as for configure: pkg->available is the archive's version when this run
    # unpacked the package (ca-certificates processing its own trigger), else <none>
    db.log(f"trigproc {db.name_always(entry)} {entry.version} {db.available.get(id(entry), '<none>')}")
    db.set_state(entry, "half-configured")
    rc = db.run_script(runner, entry, "postinst", ["triggered", " ".join(names)])
    if rc != 0:
        raise ScriptFailed(f"installed post-installation script subprocess returned error exit status {rc}",
                           where=f"package {entry.nonambig()} (triggered {' '.join(names)})")
    post_postinst(db, entry)


def pending_trigger_packages(db) -> list[PkgEntry]:
    """Packages in triggers-pending state (awaiting processing)."""
    return [e for e in db.status.entries if e.status == "triggers-pending" and e.triggers_pending]


__all__ = ["configure", "trigproc", "incorporate", "post_postinst", "pending_trigger_packages", "parse_triggers_ci"]
