"""dpkg triggers: interest files, deferred activations, pending and awaited states.

On disk (``lib/dpkg/triglib.c``, ``trigdeferred.c``; deb-triggers(5)):

- ``triggers/File``: file-trigger interests, one ``PATH PKG[/noawait]`` line each;
- ``triggers/NAME``: packages interested in the explicit trigger NAME, ``PKG[/noawait]`` lines;
- ``triggers/Unincorp``: activations recorded by ``dpkg-trigger`` but not yet incorporated into
  the status file, ``TRIGGER AWAITER...`` lines (``-`` for no awaiter);
- per package ``info/PKG.triggers`` with ``interest[-await|-noawait] NAME`` and
  ``activate[-await|-noawait] NAME`` directives.

In the status file an interested package gets ``Triggers-Pending`` (state
``triggers-pending``), and the package that activated an awaiting trigger gets
``Triggers-Awaited`` (state ``triggers-awaited``) until the trigger is processed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nuwa.deb.status import STATE_RANK
from nuwa.errors import CorruptImageError, quote


@dataclass
class Directive:
    """One line of a package's ``triggers`` control file."""

    kind: str  # "interest" | "activate"
    name: str
    noawait: bool


def parse_triggers_ci(text: str, where: str, error=CorruptImageError) -> list[Directive]:
    """Parse a ``triggers`` control file (comments and blank lines ignored).

    ``error`` is the class raised for a bad line: the default suits the copy in the image's
    info database (a damaged image); a ``.deb``'s own file is bad input (InvalidInputError).
    """
    out = []
    for i, ln in enumerate(text.splitlines()):
        ln = ln.split("#", 1)[0].strip()
        if not ln:
            continue
        parts = ln.split()
        if len(parts) != 2:
            raise error(f"syntax error in triggers control file line {i + 1}: {quote(ln)}", where=where)
        word, name = parts
        kinds = {"interest": ("interest", False), "interest-await": ("interest", False),
                 "interest-noawait": ("interest", True), "activate": ("activate", False),
                 "activate-await": ("activate", False), "activate-noawait": ("activate", True)}
        if word not in kinds:
            raise error(f"unknown directive {quote(word)} in triggers control file line {i + 1}", where=where)
        k, noawait = kinds[word]
        problem = trigger_name_problem(name, k)
        if problem:
            raise error(f"triggers control file line {i + 1}: illegal trigger name {quote(name)}: {problem}",
                        where=where)
        out.append(Directive(k, name, noawait))
    return out


def trigger_name_problem(name: str, kind: str) -> str | None:
    """dpkg's ``trig_name_is_illegal`` (printable ASCII only), plus what a file name can be: an
    explicit trigger's interests live in ``triggers/NAME``, one directory entry of 255 bytes
    (``.``, ``..`` and names with ``/`` are none; dpkg fails creating them)."""
    if any(c <= " " or c >= "\x7f" for c in name):
        return "trigger name contains invalid character"
    if kind == "interest" and not name.startswith("/"):
        if len(name.encode("utf-8", "surrogateescape")) > 255:
            return "longer than 255 bytes (the name of its file in the triggers directory)"
        if name in (".", "..") or "/" in name:
            return "not a file name in the triggers directory"
    return None


@dataclass
class Interest:
    package: str  # as written (name or name:arch)
    noawait: bool


@dataclass
class TriggerState:
    """The ``triggers/`` directory: interests by trigger name and file path, and Unincorp."""

    fs: object
    admindir: str = "/var/lib/dpkg"
    file_interests: list[tuple[str, Interest]] = field(default_factory=list)
    named: dict[str, list[Interest]] = field(default_factory=dict)
    unincorp: list[tuple[str, list[str]]] = field(default_factory=list)
    _dirty_file: bool = False
    _dirty_named: set = field(default_factory=set)
    _dirty_unincorp: bool = False

    @property
    def dir(self) -> str:
        return self.admindir.rstrip("/") + "/triggers"

    @classmethod
    def load(cls, fs, admindir: str = "/var/lib/dpkg") -> "TriggerState":
        """Read File, Unincorp and every named interest file."""
        st = cls(fs, admindir)
        try:
            names = fs.readdir(st.dir)
        except FileNotFoundError:
            names = []
        for n in names:
            if n in ("Lock",) or "." in n or n.endswith("-new"):
                continue
            try:
                text = fs.read_bytes(f"{st.dir}/{n}").decode("utf-8", "surrogateescape")
            except IsADirectoryError:  # dpkg cannot read it either: the database is damaged
                raise CorruptImageError(f"trigger interest file {quote(n)} is a directory",
                                        where=f"{st.dir}/{quote(n)[1:-1]}") from None
            if n == "File":
                for ln in text.splitlines():
                    if not ln.strip():
                        continue
                    path, _, pkg = ln.rpartition(" ")
                    st.file_interests.append((path, _interest(pkg)))
            elif n == "Unincorp":
                st.unincorp = _parse_unincorp(text)
            else:
                st.named[n] = [_interest(ln.strip()) for ln in text.splitlines() if ln.strip()]
        return st

    # ---- interests -------------------------------------------------------------------------
    def interested_in_file(self, path: str) -> list[tuple[str, Interest]]:
        """File-trigger interests matching ``path`` (an interest in a directory covers its tree)."""
        out = []
        for ipath, it in self.file_interests:
            if path == ipath or path.startswith(ipath.rstrip("/") + "/"):
                out.append((ipath, it))
        return out

    def add_interest(self, name: str, package: str, noawait: bool) -> None:
        it = Interest(package, noawait)
        if name.startswith("/"):
            if not any(p == name and i.package == package for p, i in self.file_interests):
                self.file_interests.append((name, it))
                self._dirty_file = True
        else:
            lst = self.named.setdefault(name, [])
            if not any(i.package == package for i in lst):
                lst.append(it)
                self._dirty_named.add(name)

    def remove_interest(self, name: str, package: str) -> None:
        if name.startswith("/"):
            before = len(self.file_interests)
            self.file_interests = [(p, i) for p, i in self.file_interests if not (p == name and i.package == package)]
            self._dirty_file |= len(self.file_interests) != before
        elif name in self.named:
            before = len(self.named[name])
            self.named[name] = [i for i in self.named[name] if i.package != package]
            if len(self.named[name]) != before:
                self._dirty_named.add(name)

    def save(self) -> None:
        """Write what changed (``File``, named interest files, ``Unincorp``)."""
        fs = self.fs
        if self._dirty_file:
            text = "".join(f"{p} {i.package}{'/noawait' if i.noawait else ''}\n" for p, i in self.file_interests)
            _write(fs, f"{self.dir}/File", text)
        for name in sorted(self._dirty_named):
            lst = self.named.get(name, [])
            if lst:
                _write(fs, f"{self.dir}/{name}", "".join(f"{i.package}{'/noawait' if i.noawait else ''}\n" for i in lst))
            else:
                try:
                    fs.unlink(f"{self.dir}/{name}")
                except FileNotFoundError:
                    pass
        if self._dirty_unincorp:
            _write(fs, f"{self.dir}/Unincorp", "".join(t + "".join(" " + x for x in a) + "\n" for t, a in self.unincorp))
        self._dirty_file = False
        self._dirty_named = set()
        self._dirty_unincorp = False

    def reload_unincorp(self) -> None:
        """Read ``Unincorp`` again (a script's ``dpkg-trigger`` may have added to it)."""
        if self._dirty_unincorp:  # ours is newer (not yet written)
            return
        try:
            text = self.fs.read_bytes(f"{self.dir}/Unincorp").decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            text = ""
        self.unincorp = _parse_unincorp(text)

    def take_unincorp(self) -> list[tuple[str, list[str]]]:
        """Deferred activations to incorporate into the status (then the file is emptied)."""
        items, self.unincorp = self.unincorp, []
        if items:
            self._dirty_unincorp = True
        return items

    def defer(self, trigger: str, awaiter: str | None) -> None:
        """Record an activation exactly as ``dpkg-trigger`` rewrites Unincorp.

        ``src/trigger/main.c`` (``tdm_add_*``): the awaiting package (``-`` for none) goes
        first on the trigger's first line and is dropped from the rest of that trigger's
        lines; other lines are kept; a trigger not yet listed gets a new last line.
        """
        aw = awaiter or "-"
        done = False
        out = []
        for t, aws in self.unincorp:
            if t == trigger:
                lst = ([] if done else [aw]) + [a for a in aws if a != aw]
                done = True
                out.append((t, lst))
            else:
                out.append((t, list(aws)))
        if not done:
            out.append((trigger, [aw]))
        self.unincorp = out
        self._dirty_unincorp = True


def _parse_unincorp(text: str) -> list[tuple[str, list[str]]]:
    """``Unincorp`` lines as ``(trigger, awaiters)``."""
    out = []
    for ln in text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"):
        # trigdef_parse reads with fgets_checked: an empty line ends the file
        # (what follows is lost on the next rewrite); comment lines are skipped
        if ln == "":
            break
        if ln.lstrip().startswith("#"):
            continue
        parts = ln.split()
        if parts:
            out.append((parts[0], parts[1:]))
    return out


def _interest(word: str) -> Interest:
    if word.endswith("/noawait"):
        return Interest(word[: -len("/noawait")], True)
    return Interest(word, False)


def _write(fs, path: str, text: str) -> None:
    fs.makedirs(path.rsplit("/", 1)[0])
    new = path + ".new"
    fs.write_bytes(new, text.encode("utf-8", "surrogateescape"))
    fs.rename(new, path)


def record_activation(db, pend, trigger: str, awaiter) -> None:
    """dpkg ``trig_record_activation``: ``pend`` gets ``trigger`` pending, ``awaiter`` awaits it.

    Only packages that are at least triggers-awaited (configured) take note; the awaiter is
    only recorded when the activation is not ``noawait``.
    """
    if STATE_RANK[pend.status] < STATE_RANK["triggers-awaited"]:
        return
    pending = pend.triggers_pending
    if trigger not in pending:
        pending.append(trigger)
        pend.set_triggers_pending(pending)
        if pend.status == "installed":
            db.set_state(pend, "triggers-pending")
        else:
            db.note(pend)
    if awaiter is not None and STATE_RANK[pend.status] > STATE_RANK["config-files"]:
        aw = awaiter.triggers_awaited
        if pend.nonambig() not in aw:
            aw.append(pend.nonambig())
            awaiter.set_triggers_awaited(aw)
            if STATE_RANK[awaiter.status] > STATE_RANK["triggers-awaited"]:
                db.set_state(awaiter, "triggers-awaited")
            else:  # trig_record_activation notes the awaiter whatever its state
                db.note(awaiter)
