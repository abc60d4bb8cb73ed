"""What adduser 3.134's Perl scripts share (``Debian/AdduserCommon.pm`` and the option parsing):
the configuration defaults and ``read_config``, ``warnf``/``dief`` output, ``systemcall`` of the
shadow-utils models, ``acquire_lock``, Getopt::Long's rules, and id helpers.
"""

from __future__ import annotations

import re

from nuwa.script.commands.accounts import useradd as _ua
from nuwa.script.commands.accounts import usermod as _um
from nuwa.script.commands.accounts.db import Accounts
from nuwa.script.context import Defer, Invocation


DEFAULTS = {
    "system": "0", "only_if_empty": "0", "remove_home": "0", "home": "", "remove_all_files": "0",
    "backup": "0", "backup_to": ".", "dshell": "/bin/bash", "first_system_uid": "100",
    "last_system_uid": "999", "first_uid": "1000", "last_uid": "59999", "first_system_gid": "100",
    "last_system_gid": "999", "first_gid": "1000", "last_gid": "59999", "dhome": "/home",
    "skel": "/etc/skel", "usergroups": "yes", "users_gid": None, "users_group": None, "grouphomes": "no",
    "letterhomes": "no", "quotauser": "", "dir_mode": "0700", "sys_dir_mode": "0755", "setgid_home": "no",
    "no_del_paths": "", "name_regex": r"^[a-z][a-z0-9_-]*\$?$", "sys_name_regex": r"^[a-z_][a-z0-9_-]*\$?$",
    "exclude_fstypes": "", "skel_ignore_regex": r"\.(dpkg|ucf)-(old|new|dist)$", "extra_groups": "users",
    "add_extra_groups": "0", "uid_pool": "", "gid_pool": "", "backup_suffix": None,
}


class Stop(Exception):
    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class Tool:
    """State of one adduser/deluser run: output, configuration, the shadow-utils calls."""

    def __init__(self, inv: Invocation, verbose: int):
        self.inv = inv
        self.prog = inv.name
        self.verbose = verbose
        self.config: dict[str, str | None] = {}

    def out(self, msg: str) -> None:
        self.inv.out(msg)

    def warn(self, msg: str) -> None:
        """``warnf``: ``PROG: msg`` on stderr."""
        self.inv.err(f"{self.prog}: {msg}")

    def die(self, msg: str, status: int = 1):
        """``dief``."""
        self.warn(msg)
        raise Stop(status)

    def read_config(self, files: list[str]) -> None:
        """``preseed_config`` then ``read_config`` of each file."""
        self.config = dict(DEFAULTS)
        for path in files:
            try:
                text = self.inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
            except IsADirectoryError:
                raise Defer(f"{self.prog}: configuration {path} is a directory") from None
            except OSError:
                if self.verbose:
                    self.warn(f"`{path}' does not exist. Using defaults.\n")
                continue
            for n, line in enumerate(text.split("\n")[:-1] if text.endswith("\n") else text.split("\n"), 1):
                if line.startswith("#") or not line.strip():
                    continue
                m = re.match(r"\s*([_a-zA-Z0-9]+)\s*=\s*(.*)", line)
                if not m:
                    self.warn(f"Couldn't parse `{path}', line {n}.\n")
                    continue
                var, val = m.group(1), m.group(2)
                if var.lower() not in self.config:
                    self.warn(f"Unknown variable `{var}' at `{path}', line {n}.\n")
                    continue
                val = re.sub(r'^"(.*)"$', r"\1", val)
                val = re.sub(r"^'(.*)'$", r"\1", val)
                self.config[var.lower()] = val
        if self.config["uid_pool"] or self.config["gid_pool"] or self.config["quotauser"]:
            raise Defer(f"{self.prog}: UID_POOL/GID_POOL/QUOTAUSER in the configuration are not modelled")

    def num(self, key: str) -> int:
        v = self.config[key] or "0"
        m = re.match(r"\s*[-+]?\d+", v)
        return int(m.group(0)) if m else 0

    def call(self, argv: list[str]) -> None:
        """``systemcall``: run a shadow-utils model; a failure stops the script like dief."""
        sub = Invocation(argv=list(argv), fs=self.inv.fs, cwd="/", env=dict(self.inv.env), umask=self.inv.umask,
                         run=self.inv.run, state=self.inv.state, models=self.inv.models)
        models = {"groupadd": _ua.groupadd, "useradd": _ua.useradd, "usermod": _um.usermod,
                  "gpasswd": _um.gpasswd, "chfn": _um.chfn, "userdel": _um.userdel, "groupdel": _um.groupdel}
        status = models[argv[0].rsplit("/", 1)[-1]](sub)
        self.inv.out(bytes(sub.stdout))
        self.inv.err(bytes(sub.stderr))
        if status:
            self.die(f"`{' '.join(argv)}' returned error code {status}. Exiting.\n")

    def which(self, prog: str) -> str:
        """``which``: the first ``$dir/$prog`` with an execute bit along the scripts' own PATH
        (``/bin:/usr/bin:/sbin:/usr/sbin``), so on a merged-/usr image ``/sbin/groupadd``; the
        path shows in error messages."""
        for d in ("/bin", "/usr/bin", "/sbin", "/usr/sbin"):
            try:
                st = self.inv.fs.stat(f"{d}/{prog}")
            except OSError:
                continue
            if st.st_mode & 0o111:
                return f"{d}/{prog}"
        self.die(f"Could not find program named `{prog}' in $PATH.\n")

    def lock(self) -> None:
        """``acquire_lock``: open ``/run/adduser`` for appending (created 0666 & ~umask)."""
        fs = self.inv.fs
        if not fs.lexists("/run/adduser"):
            try:
                fs.write_bytes("/run/adduser", b"", 0o666 & ~self.inv.umask)
            except OSError:
                self.die("could not open lock file /run/adduser!\n")


def _db(inv: Invocation) -> Accounts:
    return Accounts(inv.fs)


def _gid_of(db: Accounts, name: str | None) -> int | None:
    g = db.grp(name) if name else None
    return int(g[2]) if g else None


def _first_avail(used: set[int], lo: int, hi: int) -> int:
    for i in range(lo, hi + 1):
        if i not in used:
            return i
    return -1


_ADD_FLAGS = {"add-extra-groups", "add_extra_groups", "allow-all-names", "allow-badname", "allow-bad-names",
              "debug", "disabled-login", "disabled-password", "force-badname", "group", "help", "h",
              "no-create-home", "quiet", "q", "system", "verbose", "version", "v"}


_ADD_VALUES = {"comment", "conf", "c", "firstgid", "firstuid", "gecos", "gid", "home", "ingroup", "lastgid",
               "lastuid", "shell", "uid"}


_DEL_FLAGS = {"quiet", "q", "debug", "verbose", "version", "v", "help", "h", "group", "system", "only-if-empty",
              "remove-home", "remove-all-files", "backup", "no-preserve-root"}


_DEL_VALUES = {"conf", "c", "backup-to", "backup-suffix"}


def getopts(inv: Invocation, flags: set[str], values: set[str], stop_at_names: bool = False):
    """Getopt::Long as adduser configures it: ``-``/``--`` prefixes, unique abbreviations."""
    args = inv.argv[1:]
    opts: list[tuple[str, str | None]] = []
    names: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            names.extend(args[i:])
            break
        if not a.startswith("-") or a == "-":
            names.append(a)
            continue
        body = a.lstrip("-")
        key, eq, val = body.partition("=")
        cands = [k for k in flags | values if k == key] or [k for k in flags | values if k.startswith(key)]
        if len(cands) != 1:
            raise Defer(f"{inv.name}: option {a} (unknown or ambiguous; the usage text is not modelled)")
        key = cands[0]
        if key in values:
            if not eq:
                if i >= len(args):
                    raise Defer(f"{inv.name}: option {a} needs a value (usage text not modelled)")
                val = args[i]
                i += 1
            opts.append((key, val))
        else:
            if eq:
                raise Defer(f"{inv.name}: option {a} takes no value (usage text not modelled)")
            opts.append((key, None))
    return opts, names


def _int_opt(inv: Invocation, v: str) -> int:
    if not re.fullmatch(r"[-+]?\d+", v):
        raise Defer(f"{inv.name}: non-numeric id {v!r} (Getopt::Long's usage error is not modelled)")
    return int(v)


def _executable(inv: Invocation, p: str) -> bool:
    try:
        st = inv.fs.stat(p)
    except OSError:
        return False
    return bool(st.st_mode & 0o111) and not st.is_dir
