"""Reading the first-boot job's outcome offline, from an image that was booted and stopped.

:func:`job_status` reads, through the filesystem model (nothing runs), what the runner left in
the image (docs/firstboot.md, "Reading the outcome"):

- the pending job ``/var/lib/nuwa/firstboot`` (never booted: every entry ``pending``; a boot
  cut short: some entries have a ``status``, one may have ``started`` without one);
- the finished job ``firstboot.last`` points at (``/var/lib/nuwa/firstboot.done.<time>.<pid>``),
  and the names of earlier finished jobs.

Each entry gets an *outcome*: ``pending``, ``done`` (exit 0), ``failed`` (another exit
status, or the entry could not run), ``timed-out``, ``interrupted`` (started at a boot that
did not finish it: the runner never runs it again) or ``skipped`` (an earlier entry of its
package failed, or the job's time was spent), with the runner's reason and the entry's log.

A job directory damaged between patch and boot is read as far as it goes: the entry ids come
from ``job`` and ``entries/`` when ``job.json`` does not parse, and what is missing is said.
:func:`dpkg_notes` says where dpkg's database records a package as installed although work
deferred from its maintainer scripts did not succeed at boot.
"""

from __future__ import annotations

import json
import posixpath

from nuwa.deb.status import StatusFile
from nuwa.errors import NuwaError
from nuwa.script.firstboot_texts import JOB_DIR, LOG_FILE

__all__ = ["OUTCOMES", "job_status", "dpkg_notes", "summary_lines"]

OUTCOMES = ("pending", "done", "failed", "timed-out", "interrupted", "skipped")
LAST_LINK = posixpath.dirname(JOB_DIR) + "/firstboot.last"
#: at most this much of an entry's log is returned (its end: where errors are)
LOG_LIMIT = 64 * 1024


def _read(fs, path: str, limit: int | None = None) -> bytes | None:
    try:
        data = fs.read_bytes(path)
    except OSError:
        return None
    if limit is not None and len(data) > limit:
        return data[-limit:]
    return data


def _text(fs, path: str) -> str | None:
    data = _read(fs, path)
    return None if data is None else data.decode("utf-8", "replace").strip()


def _is_dir(fs, path: str) -> bool:
    try:
        return fs.stat(path).is_dir
    except OSError:
        return False


def outcome_of(status: str | None, started: bool) -> tuple[str, int | None]:
    """(outcome, exit status) for an entry's ``status`` file text (None: no such file)."""
    if status is None:
        return ("interrupted" if started else "pending"), None
    if status.isdigit():
        n = int(status)
        return ("done" if n == 0 else "failed"), n
    if status == "timeout":
        return "timed-out", None
    if status in ("interrupted", "skipped", "failed"):
        return status, None
    return "failed", None


def _entry(fs, d: str, eid: str, described: dict | None) -> dict:
    ed = f"{d}/entries/{eid}"
    desc = described or {}
    status = _text(fs, f"{ed}/status")
    started = fs.lexists(f"{ed}/started")
    outcome, code = outcome_of(status, started)
    reason = _text(fs, f"{ed}/reason") or ""
    if outcome == "interrupted" and status is None:
        reason = "started at a boot that did not finish it; the runner will not run it again"
    elif outcome == "failed" and code is not None and not reason:
        reason = f"exit status {code}"
    elif status is not None and not status.isdigit() and status not in ("timeout", "interrupted", "skipped", "failed"):
        reason = f"unknown status {status!r}"
    if outcome == "pending" and not _is_dir(fs, ed):
        reason = "the entry's directory is missing (the runner will record it as failed)"
    elif outcome == "pending" and not fs.lexists(f"{ed}/run"):
        reason = "the entry's run file is missing (the runner will record it as failed)"
    full = _read(fs, f"{ed}/log")
    log = full if full is None or len(full) <= LOG_LIMIT else full[-LOG_LIMIT:]
    label = desc.get("label") or _text(fs, f"{ed}/label") or ""
    return {"id": eid, "kind": desc.get("kind", ""), "package": desc.get("package") or _text(fs, f"{ed}/package") or "",
            "label": label, "argv": desc.get("argv", []), "source": desc.get("source", ""),
            "script_name": desc.get("script_name", ""), "timeout": desc.get("timeout"),
            "outcome": outcome, "exit_status": code, "status": status, "reason": reason,
            "log": None if log is None else log.decode("utf-8", "replace"),
            "log_truncated": full is not None and len(full) > LOG_LIMIT}


def read_job_dir(fs, d: str) -> dict:
    """One job directory (pending or finished) with each entry's outcome and log."""
    problems = []
    doc = None
    raw = _read(fs, f"{d}/job.json")
    if raw is None:
        problems.append("job.json is missing")
    else:
        try:
            doc = json.loads(raw.decode("utf-8"))
            if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
                raise ValueError("no entry list")
        except (UnicodeDecodeError, ValueError) as e:
            problems.append(f"job.json does not parse ({e})")
            doc = None
    described = {}
    for e in (doc or {}).get("entries", []):
        if isinstance(e, dict) and isinstance(e.get("id"), str):
            described[e["id"]] = e
    listed = _text(fs, f"{d}/job")
    words = (listed or "").split()
    ids = [x for x in words if x.isdigit()]  # what the runner runs; anything else it ignores
    if len(ids) != len(words):
        problems.append(f"the job list has {len(words) - len(ids)} line(s) that are not entry ids (ignored)")
    if listed is None and not posixpath.basename(d).startswith("firstboot.done."):
        problems.append("the job list (job) is missing: the runner will not start")
    try:
        on_disk = sorted(n for n in fs.readdir(f"{d}/entries") if n.isdigit())
    except OSError:
        on_disk = []
        problems.append("entries/ is missing")
    order = list(ids) or list(described) or on_disk
    for n in list(described) + on_disk:  # described or present but not listed: still shown
        if n not in order:
            order.append(n)
    entries = [_entry(fs, d, eid, described.get(eid)) for eid in order]
    counts = {o: 0 for o in OUTCOMES}
    for e in entries:
        counts[e["outcome"]] += 1
    if posixpath.basename(d).startswith("firstboot.done."):
        state = "finished"
    elif counts["pending"] == len(entries):
        state = "pending"
    else:
        state = "partly-run"  # a boot cut short (or the runner stopped at systemd's limit)
    return {"dir": d, "state": state, "job_timeout": (doc or {}).get("job_timeout"), "problems": problems,
            "counts": counts, "entries": entries}


def job_status(fs) -> dict:
    """The whole picture: the pending job, the last finished one, earlier finished ones.

    ``state`` is ``none`` (no job ever), ``pending``/``partly-run`` (a job waits for a boot),
    or ``finished`` (the last job ran; nothing waits)."""
    parent = posixpath.dirname(JOB_DIR)
    pending = read_job_dir(fs, JOB_DIR) if _is_dir(fs, JOB_DIR) else None
    last = None
    target = None
    try:
        target = fs.readlink(LAST_LINK)
    except OSError:
        pass
    if target:
        d = posixpath.normpath(posixpath.join(parent, target))
        if _is_dir(fs, d):
            last = read_job_dir(fs, d)
    try:
        names = fs.readdir(parent)
    except OSError:
        names = []
    earlier = sorted(n for n in names if n.startswith("firstboot.done.") and
                     (last is None or posixpath.join(parent, n) != last["dir"]))
    state = pending["state"] if pending is not None else ("finished" if last is not None else "none")
    return {"state": state, "log": LOG_FILE, "pending": pending, "last": last,
            "earlier": [posixpath.join(parent, n) for n in earlier]}


def dpkg_notes(fs, status: dict) -> list[str]:
    """Where dpkg's database should reflect deferred work that did not succeed at boot.

    The offline run told dpkg a deferred script succeeded (docs/dpkg.md), so the database
    says ``installed``; a failed, timed-out or interrupted postinst at boot is what dpkg
    would have recorded as ``half-configured``."""
    try:
        db = {e.name: e for e in StatusFile.load(fs, "/var/lib/dpkg/status").entries}
    except (OSError, NuwaError, ValueError):  # no database, or one the reader refuses: "not in the database"
        db = {}
    notes = []
    for job in (status.get("last"), status.get("pending")):
        for e in (job or {}).get("entries", []):
            if e["outcome"] not in ("failed", "timed-out", "interrupted", "skipped") or not e["package"]:
                continue
            row = db.get(e["package"])
            state = row.status if row is not None else "not in the database"
            what = e["script_name"] or e["source"] or "a maintainer script"
            if e["kind"] == "command":
                what = f"a command deferred from {posixpath.basename(e['source']) or 'its scripts'}"
            notes.append(f"{e['package']}: {what} {e['outcome']} at first boot (entry {e['id']}: "
                         f"{e['reason'] or e['outcome']}); dpkg's database says {state!r}, where dpkg itself "
                         "would have left the package half-configured: reinstall or reconfigure it "
                         f"(apt-get install --reinstall {e['package']})")
    return notes


def summary_lines(status: dict) -> list[str]:
    """The human text of ``nuwa firstboot``."""
    if status["state"] == "none":
        return ["no first-boot job in this image"]
    out = []
    for title, job in (("pending job", status["pending"]), ("last finished job", status["last"])):
        if job is None:
            continue
        c = job["counts"]
        parts = ", ".join(f"{c[o]} {o}" for o in OUTCOMES if c[o])
        out.append(f"{title}: {job['dir']} ({job['state']}; {len(job['entries'])} entries: {parts or 'none'})")
        for p in job["problems"]:
            out.append(f"  problem: {p}")
        for e in job["entries"]:
            line = f"  {e['id']} {e['outcome']}"
            if e["exit_status"] not in (None, 0):
                line += f" (exit {e['exit_status']})"
            line += f": {e['label']}"
            out.append(line)
            if e["reason"] and not (e["outcome"] == "failed" and e["exit_status"] is not None):  # "(exit N)" says it
                out.append(f"      reason: {e['reason']}")
            if e["log"] and e["outcome"] != "done":
                for ln in e["log"].rstrip("\n").splitlines()[-5:]:
                    out.append(f"      log: {ln}")
    for d in status["earlier"]:
        out.append(f"earlier finished job: {d}")
    out.append(f"boot log in the image: {status['log']}")
    return out
