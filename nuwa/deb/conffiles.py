"""Configuration files at configure time: dpkg's ``deferred_configure_conffile``.

On entry the new version of each conffile sits beside the installed one as
``NAME.dpkg-new``; the status holds the md5 of the *old distributed* version. dpkg compares
three digests — the file on disk (``nonexistent`` if missing), the new distributed file and
the old distributed one (``newconffile`` for a conffile new to the package) — and decides
(``src/main/configure.c``, ``conffoptcells``):

=================  ====================  ======================
                   distributed unchanged  distributed changed
=================  ====================  ======================
user unchanged     keep                   install the new one
user modified      keep                   *ask*
=================  ====================  ======================

Nuwa never asks: the default policy answers like ``--force-confdef --force-confold`` (keep
the local file, write the new one as ``NAME.dpkg-dist``); ``policy="new"`` answers like
``--force-confnew`` (install the new one, keep the local file as ``NAME.dpkg-old``). Each
decision is reported per file. Identical files, new conffiles and files the user deleted
follow dpkg exactly.
"""

from __future__ import annotations

import errno
import hashlib
import posixpath
import stat as _stat

from nuwa.deb.status import EMPTYHASHFLAG, NEWCONFFILEFLAG, NONEXISTENTFLAG, Conffile, PkgEntry, skip_slash_dotslash
from nuwa.errors import InvalidInputError, quote
from nuwa.fs.content import pieces

DPKGNEW, DPKGOLD, DPKGDIST = ".dpkg-new", ".dpkg-old", ".dpkg-dist"
#: dpkg's conffderef gives up after this many symlinks
_MAX_LINKS = 25


def md5_of(fs, path: str) -> str:
    """dpkg ``md5hash``: the digest of ``path`` (following symlinks), ``nonexistent`` if absent."""
    try:
        h = fs.open_handle(path)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return NONEXISTENTFLAG
        raise
    try:
        md5 = hashlib.md5()
        for _off, chunk in pieces(h, h.size()):
            md5.update(chunk)
        return md5.hexdigest()
    finally:
        h.close()


def conffderef(fs, path: str) -> str:
    """dpkg ``conffderef``: follow symlinks at the end of a conffile's path."""
    cur = path
    for _ in range(_MAX_LINKS):
        try:
            st = fs.lstat(cur)
        except OSError:
            return cur
        if not _stat.S_ISLNK(st.st_mode):
            return cur
        target = fs.readlink(cur)
        cur = posixpath.normpath(target if target.startswith("/") else posixpath.join(posixpath.dirname(cur), target))
    return cur


def _copy_perms(fs, src: str, dst: str) -> None:
    """dpkg ``file_copy_perms``: owner, group and mode of the installed file onto the new one."""
    st = fs.stat(src)
    fs.chown(dst, st.st_uid, st.st_gid)
    fs.chmod(dst, st.st_mode & 0o7777)


def configure_conffile(db, entry: PkgEntry, conff: Conffile, policy: str, activate) -> tuple[str, str]:
    """Process one conffile; returns ``(path, action)`` and updates ``conff.hash``.

    Actions: ``identical``, ``new`` (first install), ``install`` (unmodified locally, replaced),
    ``keep`` (distributed version unchanged), ``keep-dist`` (local change kept, new one written
    as .dpkg-dist), ``install-old`` (new installed, local change saved as .dpkg-old),
    ``absent`` (no .dpkg-new: already processed).
    """
    fs = db.fs
    use = db.diversions.use_path(conff.name, entry.name)
    cdr = conffderef(fs, use)
    current = md5_of(fs, cdr)
    new = cdr + DPKGNEW
    try:
        fs.lstat(new)
    except OSError as e:
        if e.errno == errno.ENOENT:
            return conff.name, "absent"
        raise
    newdist = md5_of(fs, new)
    try:
        _copy_perms(fs, cdr, new)
    except FileNotFoundError:
        pass
    if current == newdist:
        what = "identical"
    elif conff.hash == NEWCONFFILEFLAG:
        what = "new" if current == NONEXISTENTFLAG else "prompt"
    else:
        user = conff.hash != current
        dist = conff.hash != newdist
        what = "prompt" if user and dist else ("install" if dist else "keep")
        if current == NONEXISTENTFLAG and what == "keep":
            what = "keep"  # the user deleted it and the package did not change it: stays deleted
    if what == "prompt":
        what = "install-old" if policy == "new" else "keep-dist"
        db.log(f"conffile {use} {'install' if what == 'install-old' else 'keep'}")
    if what == "keep-dist":
        _unlink(fs, cdr + DPKGOLD)
        activate(use)
        fs.rename(new, cdr + DPKGDIST)
    elif what in ("keep", "identical"):
        fs.unlink(new)
    else:
        if what == "install-old":
            _unlink(fs, cdr + DPKGDIST)
            _unlink(fs, cdr + DPKGOLD)
            if current != NONEXISTENTFLAG:
                fs.link(cdr, cdr + DPKGOLD)
        activate(use)
        fs.rename(new, cdr)
    conff.hash = newdist if newdist else EMPTYHASHFLAG
    return conff.name, what


def _unlink(fs, path: str) -> None:
    try:
        fs.unlink(path)
    except FileNotFoundError:
        pass


def parse_deb_conffiles(data: bytes, db, entry: PkgEntry | None, where: str) -> list[Conffile]:
    """dpkg ``deb_parse_conffiles``: a .deb's ``conffiles`` file, each with its recorded hash.

    A bad line is bad input (InvalidInputError, exit 2). The hash is the one recorded by the
    package owning the path now (``entry`` first), else ``newconffile``.
    """
    out: list[Conffile] = []
    for ln in data.decode("utf-8", "surrogateescape").split("\n"):
        ln = ln.rstrip()
        if not ln:
            continue
        rm = False
        if not ln.startswith("/"):
            flag, _, name = ln.partition(" ")
            if flag != "remove-on-upgrade" or not name.startswith("/"):
                raise InvalidInputError(f"conffile name {quote(ln)} is not an absolute pathname or has an unknown flag",
                                        where=where)
            ln, rm = name, True
        if not skip_slash_dotslash(ln):  # dpkg 1.21 writes " / -", a status it cannot read back
            raise InvalidInputError("root or empty directory listed as a conffile", where=where)
        if any(c.name == ln for c in out):
            continue  # dpkg 1.21 records a conffile listed twice once (one fsys_namenode)
        h = NEWCONFFILEFLAG
        for other in db.owners(ln):
            for c in other.conffiles:
                if c.name == ln:
                    h = c.hash
                    break
            if other is entry and h != NEWCONFFILEFLAG:
                break
        out.append(Conffile(ln, h, False, rm))
    return out
