"""``pwconv`` and ``grpconv`` (shadow-utils 4.13, Debian 12's ``passwd``): shadowconfig's
conversion to shadow passwords, after its ``pwck -q -r`` and ``grpck -r``.

The models follow ``src/pwconv.c`` and ``src/grpconv.c``:

- both take the locks (``/etc/.pwd.lock`` is left behind, as by every shadow tool:
  :func:`accounts.db.take_locks`);
- pwconv removes the shadow entries of users not in passwd, then for each passwd entry whose
  shadow entry is missing or whose password field is not ``x`` writes the shadow entry (the
  existing one with the passwd field as password, or a new one with login.defs'
  ``PASS_MIN_DAYS``/``PASS_MAX_DAYS``/``PASS_WARN_AGE``), the last change being today
  (``gettime``: ``SOURCE_DATE_EPOCH`` first), and sets the passwd field to ``x``; files are
  written only when something changed (``commonio_close``), then ``/etc/passwd-`` is made 0600;
- grpconv removes the gshadow entries of groups not in group, then updates every group's
  gshadow entry (its members copied from the group, its password taken from the group when
  that is not ``x``; a new entry has no administrators) and sets every group's password field
  to ``x``: both files are always rewritten, with their ``-`` backups.

Entries are parsed as pwck's models parse them (:mod:`accounts.pwck`) and written through
:class:`accounts.db.AccountFile` (commonio's backup, ``+`` file and rename). Deferred:
options and operands (``-R``, another root), a missing ``/etc/passwd``, ``/etc/shadow``,
``/etc/group`` or ``/etc/gshadow`` (a first conversion creates them), duplicate names (commonio
refuses to update or remove them), lines whose parse the two readers would disagree on.
"""

from __future__ import annotations

import stat as st

from nuwa.script.commands.accounts import pwck as checks
from nuwa.script.commands.accounts.db import (GROUP, GSHADOW, PASSWD, SHADOW, AccountFile, LoginDefs, take_locks,
                                              today)
from nuwa.script.context import Defer, Invocation


def _load(inv: Invocation, path: str, parse) -> tuple[AccountFile, list[dict]]:
    """The file as :class:`AccountFile` holds it and its valid entries in file order."""
    f = AccountFile.load(inv.fs, path)
    if not f.exists:
        raise Defer(f"{inv.name}: {path} does not exist (a first conversion creates it)")
    entries, names = [], set()
    for line in f.lines:
        e = None if line[:1] in ("+", "-") else parse(line)
        if (e is None) != (f.parse(line) is None):
            raise Defer(f"{inv.name}: the entry {line!r} of {path} is not read alike by the models")
        if e is None:
            continue
        fields = f.parse(line)
        if any(k in e and fields[i] != str(e[k]) for k, i in (("uid", 2), ("gid", 3 if path == PASSWD else 2))):
            # written back as "%lu": "05" would become "5"
            raise Defer(f"{inv.name}: the entry {line!r} of {path} has an id not written as shadow writes it")
        if e["name"] in names:
            raise Defer(f"{inv.name}: {path} has several entries named {e['name']!r} (commonio refuses them)")
        names.add(e["name"])
        entries.append(e)
    return f, entries


def _plain(inv: Invocation) -> None:
    if inv.argv[1:]:
        raise Defer(f"{inv.name}: options and operands are not modelled")
    if inv.fs.exists("/etc") and not st.S_ISDIR(inv.fs.stat("/etc").st_mode):
        raise Defer(f"{inv.name}: /etc is not a directory")


def _days(n: int) -> str:
    return "" if n == -1 else str(n)


def pwconv(inv: Invocation) -> int:
    """``pwconv`` (shadow 4.13 ``src/pwconv.c``), see the module docstring."""
    _plain(inv)
    pw, pw_entries = _load(inv, PASSWD, checks.sgetpwent)
    sp, sp_entries = _load(inv, SHADOW, checks.sgetspent)
    take_locks(inv.fs, [PASSWD, SHADOW])
    users = {e["name"] for e in pw_entries}
    for e in sp_entries:
        if e["name"] not in users:
            sp.remove(e["name"])
    defs = LoginDefs(inv.fs)
    lstchg = today(inv.env) or -1  # "better disable aging than requiring a password change"
    for e in pw_entries:
        old = sp.get(e["name"])
        if old is not None and e["passwd"] == "x":
            continue
        if old is not None:
            new = list(old)
        else:
            new = [e["name"], "", "", _days(defs.num("PASS_MIN_DAYS", -1)), _days(defs.num("PASS_MAX_DAYS", -1)),
                   _days(defs.num("PASS_WARN_AGE", -1)), "", "", ""]
        new[1], new[2] = e["passwd"], _days(lstchg)
        sp.put(new)
        fields = pw.get(e["name"])
        fields[1] = "x"
        pw.put(fields)
    sp.save(inv.fs)
    pw.save(inv.fs)
    try:
        inv.fs.chmod("/etc/passwd-", 0o600)
    except FileNotFoundError:
        pass
    except OSError:
        inv.err(f"{inv.name}: failed to change the mode of /etc/passwd- to 0600\n")
    return 0


def grpconv(inv: Invocation) -> int:
    """``grpconv`` (shadow 4.13 ``src/grpconv.c``), see the module docstring."""
    _plain(inv)
    gr, gr_entries = _load(inv, GROUP, checks.sgetgrent)
    sg, sg_entries = _load(inv, GSHADOW, checks.sgetsgent)
    take_locks(inv.fs, [GROUP, GSHADOW])
    groups = {e["name"] for e in gr_entries}
    for e in sg_entries:
        if e["name"] not in groups:
            sg.remove(e["name"])
    current = {e["name"]: e for e in sg_entries}
    for e in gr_entries:
        old = current.get(e["name"])
        if old is not None:
            passwd = e["passwd"] if e["passwd"] != "x" else old["passwd"]
            adm = old["adm"]
        else:
            passwd, adm = e["passwd"], []
        sg.put([e["name"], passwd, ",".join(adm), ",".join(e["mem"])])
        gr.put([e["name"], "x", str(e["gid"]), ",".join(e["mem"])])
    sg.save(inv.fs)
    gr.save(inv.fs)
    return 0
