"""Refuse package databases that dpkg (and apt) would not carry on with.

An interrupted dpkg leaves journal entries in ``updates/`` and packages in transitional states
(``half-installed``, ``half-configured``, ``unpacked``, or with the ``reinstreq`` flag). apt
then stops with "dpkg was interrupted, you must manually run 'dpkg --configure -a'"; Nuwa
refuses in the same situations, naming each package and what ``dpkg --configure -a`` (or a
reinstall) would be needed for, and writes nothing. A malformed status file is refused by
:class:`nuwa.deb.status.StatusFile` itself with the line at fault.
"""

from __future__ import annotations

from nuwa.errors import CorruptImageError, UnsupportedFeatureError

_BAD_STATES = {
    "half-installed": "its installation or removal was interrupted (reinstall it)",
    "half-configured": "its configuration was interrupted ('dpkg --configure -a' would finish it)",
    "unpacked": "it is unpacked but not configured ('dpkg --configure -a' would configure it)",
}


def problems(db) -> list[str]:
    """Every reason dpkg would refuse (or need ``--configure -a``) for this database."""
    out = []
    try:
        journal = [n for n in db.fs.readdir(db.admindir + "/updates") if n.isdigit()]
    except FileNotFoundError:
        journal = []
    if journal:
        out.append(f"{db.admindir}/updates/ holds {len(journal)} unapplied journal entr{'y' if len(journal) == 1 else 'ies'} "
                   "(dpkg was interrupted; 'dpkg --configure -a' would apply them)")
    for e in db.status.entries:
        try:
            st, flag = e.status, e.eflag
        except CorruptImageError as err:
            out.append(str(err))
            continue
        if flag == "reinstreq":
            out.append(f"package {e.nonambig()} {e.version} is in a very bad inconsistent state (reinstreq): "
                       "it must be reinstalled")
        elif st in _BAD_STATES:
            out.append(f"package {e.nonambig()} {e.version} is {st}: {_BAD_STATES[st]}")
    return out


def check(db) -> None:
    """Raise (naming every problem) when the database is not in a state dpkg would work on."""
    found = problems(db)
    if found:
        raise UnsupportedFeatureError("package database needs 'dpkg --configure -a' or a reinstall first: "
                                      + "; ".join(found), where=db.admindir, feature="dpkg-interrupted")
