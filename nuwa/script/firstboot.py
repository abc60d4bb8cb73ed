"""The first-boot job: work that could not be simulated offline, run once at the next boot.

Deferred work -- whole script invocations (a maintainer script whose deferred command's
result was used) and single deferred commands with their context -- is written *into the
image* as one job (docs/firstboot.md has the design and the reasons):

``/var/lib/nuwa/firstboot/`` (mode 0700: environments and stdin may hold secrets)
    ``run``          the runner (``/bin/sh``): runs the entries in order, once each
    ``job``          the entry ids in order, one per line; the unit's ``ConditionPathExists``
    ``job.json``     the machine-readable description (what :meth:`FirstBootJob.load` reads)
    ``entries/NNNNNN/``  one directory per entry: ``run`` (cd, umask, a clean environment,
                     argv, stdin), ``label`` (one line for the log), ``stdin`` (a command's
                     input bytes), and for a whole script a copy of the script (named like
                     dpkg's ``<package>.<script>``, since debconf's frontend parses ``$0``)
                     plus sibling files such as the package's ``config``
``/etc/systemd/system/nuwa-firstboot.service``, enabled by the link
``/etc/systemd/system/multi-user.target.wants/nuwa-firstboot.service`` (what ``systemctl
enable`` makes), when the image has systemd; ``/etc/init.d/nuwa-firstboot`` with an LSB header
and ``/etc/rc[2345].d/S01nuwa-firstboot`` links (what ``update-rc.d defaults`` makes), when the
image has ``/etc/init.d``.

At boot the runner runs every entry (a failure does not stop the others: each exit status is
logged to the journal, to ``/var/log/nuwa-firstboot.log`` and to ``results``), then disables
itself: it removes the enabling links and renames the job directory to
``/var/lib/nuwa/firstboot.done.<time>``. Patching again before that boot *extends* the job:
:meth:`FirstBootJob.load` reads ``job.json`` and new entries are appended after the old ones.

Everything is written through the filesystem model (usually an overlay transaction); nothing
here runs anything.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass, field

from nuwa.errors import CorruptImageError, UnsupportedFeatureError
from nuwa.fs.model import FileSystem
from nuwa.script.context import Defer, Drop, Invocation, ModelSet

from nuwa.script.firstboot_texts import (DEFAULT_ENTRY_TIMEOUT, DEFAULT_JOB_TIMEOUT, DEFAULT_PATH,  # noqa: F401
                                         DEPEND_START, INITD_PATH, JOB_DIR, JOB_GRACE, KILL_AFTER, LOCK_DIR, LOG_FILE,
                                         DEBCONF_SESSION_ENV, NONINTERACTIVE_ENV, RC_LINKS, UNIT_NAME, UNIT_PATH, WANTS_LINK,
                                         initd_text, runner_text, unit_text)

FORMAT = 1
#: the names the job and the runner use inside an entry directory
_ENTRY_FILES = ("run", "label", "stdin", "started", "status", "timeout", "package", "log", "reason")
_DEFAULT_PATH = DEFAULT_PATH
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_RC_NAME_RE = re.compile(r"S[0-9][0-9]nuwa-firstboot\Z")
_SYSTEMD_BINARIES = ("/lib/systemd/systemd", "/usr/lib/systemd/systemd")


def shell_quote(word: str) -> bytes:
    """``word`` as one single-quoted sh word (bytes: arguments may not be UTF-8)."""
    raw = word.encode("utf-8", "surrogateescape")
    return b"'" + raw.replace(b"'", b"'\\''") + b"'"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def full_environment(base: dict[str, str], diff: dict[str, str | None]) -> dict[str, str]:
    """``base`` with a deferred command's environment differences applied (None unsets)."""
    env = dict(base)
    for k, v in diff.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


@dataclass
class JobEntry:
    """One unit of deferred work.

    ``kind`` is ``"command"`` (run ``argv`` through ``PATH``) or ``"script"`` (run the stored
    ``script`` bytes with ``argv`` as its arguments). ``env`` is the *complete* environment
    (the runner starts from an empty one), ``umask`` an int, ``stdin`` the bytes on fd 0.
    """

    id: str
    kind: str
    argv: list[str]
    env: dict[str, str]
    cwd: str = "/"
    umask: int = 0o022
    stdin: bytes = b""
    reason: str = ""
    source: str = ""
    line: int = 0
    package: str = ""
    script_name: str = ""
    script: bytes = b""
    extra_files: dict[str, bytes] = field(default_factory=dict)
    #: False for entries read back by :meth:`FirstBootJob.load` (already in the image)
    new: bool = True
    #: the ``job.json`` record an entry was loaded from (re-emitted as it was)
    stored: dict | None = None
    #: seconds the entry may run at boot (TERM, then KILL after KILL_AFTER)
    timeout: int = DEFAULT_ENTRY_TIMEOUT
    #: the command's own output redirections, replayed after its argv: [fd, ">"|">>", path] or
    #: [fd, ">&", "1"] (``DeferredCommand.redirects``)
    redirects: list = field(default_factory=list)

    @property
    def label(self) -> str:
        """One line for the log: what runs and why it was deferred."""
        if self.kind == "script":
            what = f"{self.script_name} {' '.join(self.argv)}".strip() + " (whole script)"
        else:
            what = " ".join(self.argv)
            if self.source:
                what += f" (from {self.source}" + (f" line {self.line})" if self.line else ")")
        return _one_line(f"{what}: {self.reason}" if self.reason else what)

    def to_json(self) -> dict:
        """The entry's record in ``job.json`` (bytes are described, not embedded)."""
        if self.stored is not None:
            return dict(self.stored)
        d = {"id": self.id, "kind": self.kind, "argv": list(self.argv), "env": dict(self.env), "cwd": self.cwd,
             "umask": f"{self.umask:04o}", "stdin_size": len(self.stdin), "reason": self.reason,
             "source": self.source, "line": self.line, "package": self.package, "label": self.label,
             "timeout": self.timeout}
        if self.redirects:
            d["redirects"] = [list(r) for r in self.redirects]
        if self.kind == "script":
            d["script_name"] = self.script_name
            d["script_size"] = len(self.script)
            d["extra_files"] = sorted(self.extra_files)
        return d

    @classmethod
    def from_json(cls, d: dict, where: str) -> "JobEntry":
        """An entry from ``job.json`` (its files are already in the image)."""
        try:
            return cls(id=str(d["id"]), kind=str(d["kind"]), argv=[str(a) for a in d["argv"]],
                       env={str(k): str(v) for k, v in d["env"].items()}, cwd=str(d["cwd"]),
                       umask=int(d["umask"], 8), reason=str(d.get("reason", "")), source=str(d.get("source", "")),
                       line=int(d.get("line", 0)), package=str(d.get("package", "")),
                       script_name=str(d.get("script_name", "")), new=False, stored=dict(d),
                       timeout=int(d.get("timeout", DEFAULT_ENTRY_TIMEOUT)),
                       redirects=[_redirect(r) for r in d.get("redirects", [])])
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CorruptImageError(f"bad entry in the first-boot job ({type(e).__name__}: {e})", where=where) from None

    def run_script(self, job_dir: str = JOB_DIR) -> bytes:
        """The entry's ``run`` file: working directory, umask, environment, argv, stdin.

        ``env -i`` gives the command exactly the recorded environment; ``sh -c 'exec "$@"'``
        then finds ``argv[0]`` through that environment's ``PATH`` (as the simulator did) even
        when it contains ``=`` (which ``env`` would take for an assignment).
        """
        d = f"{job_dir}/entries/{self.id}"
        out = [b"#!/bin/sh",
               b"# Nuwa first-boot entry " + self.id.encode() + b" (generated; see docs/firstboot.md)",
               b"# " + self.label.encode("utf-8", "replace").replace(b"\n", b" "),
               b"cd " + shell_quote(self.cwd) + b" || exit 126",
               f"umask {self.umask:04o}".encode()]
        # never interactive at boot: nobody answers a question there (docs/firstboot.md)
        full = {k: v for k, v in self.env.items() if k not in DEBCONF_SESSION_ENV} | NONINTERACTIVE_ENV
        env = b" ".join(shell_quote(f"{k}={v}") for k, v in sorted(full.items()) if _NAME_RE.match(k))
        head = b"exec /usr/bin/env -i " + (env + b" " if env else b"")
        stdin = shell_quote(f"{d}/stdin") if self.stdin else b"/dev/null"
        if self.kind == "script":
            script = shell_quote(f"{d}/{self.script_name}")
            if self.script.startswith(b"#!"):
                cmd = script  # the kernel reads the #! line, as when dpkg execs the script
            else:
                cmd = b"/bin/sh " + script
            out.append(head + cmd + b"".join(b" " + shell_quote(a) for a in self.argv) + b" <" + stdin)
        else:
            out.append(head + b"/bin/sh -c 'exec \"$@\"' nuwa-firstboot"
                       + b"".join(b" " + shell_quote(a) for a in self.argv) + b" <" + stdin
                       + b"".join(b" " + _redirect_text(r) for r in self.redirects))
        return b"\n".join(out) + b"\n"


def _redirect(r) -> list:
    """One stored redirection, checked: a bad one is a damaged job."""
    if not (isinstance(r, list) and len(r) == 3 and r[0] in (1, 2) and r[1] in (">", ">>", ">&")):
        raise ValueError(f"bad redirection {r!r}")
    if r[1] == ">&" and r[2] not in ("1", "2"):
        raise ValueError(f"bad redirection {r!r}")
    if r[1] != ">&" and not (isinstance(r[2], str) and r[2].startswith("/") and "\n" not in r[2]):
        raise ValueError(f"bad redirection {r!r}")
    return [r[0], r[1], r[2]]


def _redirect_text(r) -> bytes:
    """``1>PATH``, ``1>>PATH``, ``2>&1`` for the entry's run file (the path quoted)."""
    fd, op, target = r
    if op == ">&":
        return f"{fd}>&{target}".encode()
    return f"{fd}{op}".encode() + shell_quote(target)


#: the texts for the default limits (the job writes them for its own limits)
RUNNER = runner_text()
UNIT = unit_text()
INITD = initd_text()


def has_systemd(fs: FileSystem) -> bool:
    """The image boots (or can boot) with systemd: its manager binary or unit dir exists."""
    return any(fs.exists(p) for p in _SYSTEMD_BINARIES) or fs.exists("/etc/systemd/system")


def has_sysvinit(fs: FileSystem) -> bool:
    """The image has an ``/etc/init.d`` directory (sysvinit, or systemd's sysv generator)."""
    try:
        return fs.stat("/etc/init.d").is_dir
    except OSError:
        return False


class FirstBootJob:
    """The image's pending first-boot job: entries read from the image plus new ones.

    ``job = FirstBootJob.load(fs)``; ``job.add_command(...)`` / ``job.add_script(...)`` /
    ``job.add_result(...)``; ``job.write(fs)`` (only when ``job.entries`` is not empty);
    ``job.to_json()`` for reports.
    """

    def __init__(self, entry_timeout: int = DEFAULT_ENTRY_TIMEOUT, job_timeout: int = DEFAULT_JOB_TIMEOUT) -> None:
        if int(entry_timeout) <= 0 or int(job_timeout) <= 0:
            raise ValueError("first-boot time limits must be positive")
        self.entries: list[JobEntry] = []
        self.activation: list[str] = []
        #: seconds for each entry added from now on, and for the whole job at boot
        self.entry_timeout = int(entry_timeout)
        self.job_timeout = int(job_timeout)

    # ---- reading -----------------------------------------------------------------------------
    @classmethod
    def load(cls, fs: FileSystem, entry_timeout: int = DEFAULT_ENTRY_TIMEOUT,
             job_timeout: int = DEFAULT_JOB_TIMEOUT) -> "FirstBootJob":
        """The job already in the image (not yet run), or an empty one.

        The limits apply to entries added now and to the whole job (the runner and the unit
        are rewritten with them); entries already in the image keep their own limit.
        """
        job = cls(entry_timeout, job_timeout)
        where = f"{JOB_DIR}/job.json"
        if not fs.lexists(where):
            return job
        try:
            doc = json.loads(fs.read_bytes(where).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise CorruptImageError(f"the first-boot job description does not parse ({e})", where=where) from None
        if not isinstance(doc, dict) or not isinstance(doc.get("entries"), list):
            raise CorruptImageError("the first-boot job description has no entry list", where=where)
        if doc.get("format") != FORMAT:
            raise UnsupportedFeatureError(f"first-boot job format {doc.get('format')!r} (this Nuwa writes {FORMAT})",
                                          where=where, feature="firstboot-format")
        job.entries = [JobEntry.from_json(e, where) for e in doc["entries"]]
        job.activation = [str(a) for a in doc.get("activation", [])]
        return job

    # ---- adding ------------------------------------------------------------------------------
    def _next_id(self) -> str:
        n = max((int(e.id) for e in self.entries if e.id.isdigit()), default=0) + 1
        return f"{n:06d}"

    def add_command(self, cmd, base_env: dict[str, str], source: str = "", package: str = "") -> JobEntry:
        """Append a deferred command (a :class:`nuwa.script.record.DeferredCommand`).

        ``base_env`` is the environment the script started with (``DeferredCommand.env``
        holds only the differences); ``source`` names the script it came from.
        """
        e = JobEntry(self._next_id(), "command", list(cmd.argv), full_environment(base_env, cmd.env), cmd.cwd,
                     cmd.umask, bytes(cmd.stdin), cmd.reason, source, cmd.line, package, timeout=self.entry_timeout,
                     redirects=[list(r) for r in getattr(cmd, "redirects", ())])
        self.entries.append(e)
        return e

    def add_script(self, script: bytes, argv: list[str], env: dict[str, str], name: str, cwd: str = "/",
                   umask: int = 0o022, reason: str = "", package: str = "", stdin: bytes = b"",
                   extra_files: dict[str, bytes] | None = None) -> JobEntry:
        """Append a whole script invocation (``script`` bytes are stored in the job).

        ``name`` is the script's path or file name (``/var/lib/dpkg/info/foo.postinst``): the
        copy keeps its basename, because debconf's frontend derives the package from ``$0``.
        ``extra_files`` are stored beside it (``{"foo.config": b"..."}``).
        """
        base = posixpath.basename(name) or "script"
        if base in _ENTRY_FILES:
            base = "script-" + base
        extras = dict(extra_files or {})
        for n in extras:
            if "/" in n or n in ("", ".", "..", base) or n in _ENTRY_FILES:
                raise ValueError(f"bad extra file name {n!r}")
        e = JobEntry(self._next_id(), "script", list(argv), dict(env), cwd, umask, bytes(stdin), reason, name, 0,
                     package, base, bytes(script), extras, timeout=self.entry_timeout)
        self.entries.append(e)
        return e

    def add_result(self, result, script: bytes, argv: list[str], env: dict[str, str], name: str,
                   package: str = "", cwd: str = "/", umask: int = 0o022, stdin: bytes = b"",
                   extra_files: dict[str, bytes] | None = None) -> list[JobEntry]:
        """Append what a :class:`nuwa.script.record.ScriptResult` deferred, in order.

        A whole-script deferral becomes one script entry (the caller has rolled the script's
        effects back); otherwise each deferred command becomes a command entry.
        """
        if result.deferred_whole:
            return [self.add_script(script, argv, env, name, cwd, umask, result.reason, package, stdin, extra_files)]
        return [self.add_command(c, env, name, package) for c in result.deferred_commands]

    # ---- writing -----------------------------------------------------------------------------
    def write(self, fs: FileSystem, models: ModelSet | None = None) -> list[str]:
        """Write the job (new entries, order, description, runner, activation) into ``fs``.

        Entries read by :meth:`load` are left as they are. Returns the activations made
        (``systemd``, ``sysvinit``; empty when the image has neither). With ``models`` (the
        set the scripts ran with), the unit is enabled by its ``systemctl``/``update-rc.d``
        model; without, or when that defers, by making the links directly.
        """
        models = models if models is not None else ModelSet()
        fs.makedirs("/var/lib/nuwa", 0o755)
        _mkdir(fs, JOB_DIR, 0o700)
        _mkdir(fs, f"{JOB_DIR}/entries", 0o700)
        for e in self.entries:
            if e.new:
                self._write_entry(fs, e)
                e.new = False
        _put(fs, f"{JOB_DIR}/run", runner_text(self.job_timeout).encode(), 0o755)
        self.activation = []
        if has_systemd(fs):
            self._enable_systemd(fs, models)
            self.activation.append("systemd")
        if has_sysvinit(fs):
            self._enable_sysv(fs, models)
            self.activation.append("sysvinit")
        _put(fs, f"{JOB_DIR}/job.json", (json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n").encode(), 0o600)
        # the job list last: it is what makes the unit (and the runner) act
        _put(fs, f"{JOB_DIR}/job", "".join(e.id + "\n" for e in self.entries).encode(), 0o600)
        return list(self.activation)

    def _write_entry(self, fs: FileSystem, e: JobEntry) -> None:
        d = f"{JOB_DIR}/entries/{e.id}"
        if fs.lexists(d):
            raise CorruptImageError("first-boot entry directory exists but is not in job.json", where=d)
        _mkdir(fs, d, 0o700)
        if e.stdin:
            _put(fs, f"{d}/stdin", e.stdin, 0o600)
        if e.kind == "script":
            _put(fs, f"{d}/{e.script_name}", e.script, 0o755)
            for n, data in sorted(e.extra_files.items()):
                _put(fs, f"{d}/{n}", data, 0o755)
        _put(fs, f"{d}/label", (e.label + "\n").encode("utf-8", "replace"), 0o600)
        # read by the runner: the entry's time limit, and its package (a failed entry of a
        # package stops that package's later entries, as dpkg would)
        _put(fs, f"{d}/timeout", f"{e.timeout}\n".encode(), 0o600)
        if e.package:
            _put(fs, f"{d}/package", (e.package + "\n").encode("utf-8", "replace"), 0o600)
        _put(fs, f"{d}/run", e.run_script(), 0o700)

    def _enable_systemd(self, fs: FileSystem, models: ModelSet) -> None:
        # `systemctl enable nuwa-firstboot.service` (the systemctl model when the set has one;
        # otherwise, or when it defers, the one link it makes for a unit in
        # /etc/systemd/system with WantedBy=multi-user.target)
        fs.makedirs("/etc/systemd/system", 0o755)
        _put(fs, UNIT_PATH, unit_text(self.job_timeout).encode(), 0o644)
        if _readlink(fs, WANTS_LINK) == UNIT_PATH:
            return
        if _run_model(fs, models, ["systemctl", "enable", UNIT_NAME]) and _readlink(fs, WANTS_LINK) == UNIT_PATH:
            return
        fs.makedirs(posixpath.dirname(WANTS_LINK), 0o755)
        if fs.lexists(WANTS_LINK):
            fs.unlink(WANTS_LINK)
        fs.symlink(UNIT_PATH, WANTS_LINK)

    def _enable_sysv(self, fs: FileSystem, models: ModelSet) -> None:
        # `update-rc.d nuwa-firstboot defaults` (its model when the set has one; otherwise, or when it
        # defers, the relative links it makes in rc2..5.d), then insserv's .depend.start
        _put(fs, INITD_PATH, initd_text(self.job_timeout).encode(), 0o755)
        target = "../init.d/nuwa-firstboot"
        if not _has_rc_links(fs):
            if not (_run_model(fs, models, ["update-rc.d", "nuwa-firstboot", "defaults"]) and _has_rc_links(fs)):
                for link in RC_LINKS:
                    fs.makedirs(posixpath.dirname(link), 0o755)
                    if _readlink(fs, link) == target:
                        continue
                    if fs.lexists(link):
                        fs.unlink(link)
                    fs.symlink(target, link)
        _add_to_depend_start(fs)

    # ---- describing --------------------------------------------------------------------------
    def to_json(self) -> dict:
        """The job as a JSON-ready dict (also stored as ``job.json``)."""
        return {"format": FORMAT, "job_dir": JOB_DIR, "log": LOG_FILE, "activation": list(self.activation),
                "job_timeout": self.job_timeout, "entries": [e.to_json() for e in self.entries]}


def _run_model(fs: FileSystem, models: ModelSet, argv: list[str]) -> bool:
    """Run the command model of ``argv[0]`` (``systemctl``, ``update-rc.d``) on ``fs``: True on success.

    False when ``models`` has none or when it defers or drops; the caller then makes the
    links itself.
    """
    model = models.get(argv[0])
    if model is None:
        return False
    inv = Invocation(argv=list(argv), fs=fs, env={"PATH": _DEFAULT_PATH, "HOME": "/root", "LANG": "C"},
                     models=models)
    try:
        return int(model(inv)) == 0
    except (Defer, Drop):
        return False


def _has_rc_links(fs: FileSystem) -> bool:
    """Every runlevel 2-5 directory starts the script (any sequence number insserv chose)."""
    for n in "2345":
        try:
            names = fs.readdir(f"/etc/rc{n}.d")
        except OSError:
            return False
        if not any(_RC_NAME_RE.match(x) for x in names):
            return False
    return True


def _readlink(fs: FileSystem, path: str) -> str | None:
    try:
        return fs.readlink(path)
    except OSError:
        return None


def _mkdir(fs: FileSystem, path: str, mode: int) -> None:
    if not fs.lexists(path):
        fs.mkdir(path, mode)
    fs.chmod(path, mode)


def _put(fs: FileSystem, path: str, data: bytes, mode: int) -> None:
    """Write a root-owned file with exactly ``mode`` (write_bytes keeps an old file's mode)."""
    fs.write_bytes(path, data, mode)
    fs.chown(path, 0, 0)
    fs.chmod(path, mode)


def _add_to_depend_start(fs: FileSystem) -> None:
    """Name the script in insserv's ``.depend.start`` when the image has one.

    sysv-rc's ``/etc/init.d/rc`` (``CONCURRENCY=makefile``) starts what ``startpar -M start``
    reads from that file, so a script missing from it would not start until insserv runs
    again. The runlevel-2 start happens after all of rcS ($local_fs, $remote_fs), so the
    entry needs no dependency of its own.
    """
    try:
        text = fs.read_bytes(DEPEND_START).decode("utf-8", "surrogateescape")
    except OSError:
        return
    lines = text.splitlines()
    changed = False
    for i, line in enumerate(lines):
        if line.startswith("TARGETS =") and "nuwa-firstboot" not in line.split():
            lines[i] = line.rstrip() + " nuwa-firstboot"
            changed = True
    if not any(line.startswith("nuwa-firstboot:") for line in lines):
        lines.append("nuwa-firstboot:")
        changed = True
    if changed:
        fs.write_bytes(DEPEND_START, ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape"))
