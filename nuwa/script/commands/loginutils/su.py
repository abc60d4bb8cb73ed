"""Models of ``su`` and ``runuser`` (util-linux 2.38 ``login-utils/su-common.c``) as root runs
them from maintainer scripts: ``su USER -c CMD``, ``su -s SHELL USER -c CMD``, ``runuser -u
USER -- CMD ARG...`` (postgresql-common's ``su -s /bin/sh postgres -c "test -O ..." || chown``).

The command runs in the simulator as that user (:class:`credfs.UserView`: the kernel's
permission checks, new files owned by the user, ``id`` and ``test -O`` answering for them),
with the environment su gives it: ``modify_environment`` without ``--login`` sets HOME and
SHELL, and USER and LOGNAME for a non-root user, then the PAM session's variables are
exported -- for ``su`` the image's ``/etc/pam.d/su``: ``pam_env`` (``readenv=1`` reads
``/etc/environment``, ``envfile=`` another file) and ``pam_mail`` (MAIL=/var/mail/USER).
``runuser``'s PAM service sets none. The command's child shell is atomic (a deferral inside
it undoes it and defers the whole ``su``, so nothing is replayed at first boot as root).

Deferred, with the reason: ``--login``/``-``, ``--preserve-environment``, ``-g``/``-G``, no
command (an interactive shell), a user whose shadow entry expires, a PAM stack with modules
beyond ``pam_rootok``/``pam_env``/``pam_mail``/``pam_limits``/``pam_keyinit``/``pam_unix``/
``pam_permit``/``pam_deny`` (``pam_systemd`` registers a session with the running logind),
``pam_env`` lines other than plain ``NAME=VALUE``, and ``ALWAYS_SET_PATH`` in login.defs.
"""

from __future__ import annotations

import posixpath
import re

from nuwa.script.commands import _args
from nuwa.script.commands._common import UserDB
from nuwa.script.commands.loginutils.credfs import Credentials, UserView
from nuwa.script.context import Defer, Invocation

_SU = _args.spec("c:s:lmpg:G:fPw:", {
    "command": "c", "shell": "s", "login": "l", "preserve-environment": "m", "group": "g", "supp-group": "G",
    "pty": "P", "whitelist-environment": "w", "session-command": ("session-command", _args.REQ)})
_RUNUSER = _args.spec("u:c:s:lmpg:G:fPw:", {
    "user": "u", "command": "c", "shell": "s", "login": "l", "preserve-environment": "m", "group": "g",
    "supp-group": "G", "pty": "P", "whitelist-environment": "w", "session-command": ("session-command", _args.REQ)})

#: PAM modules whose session work leaves nothing a command sees except what is modelled here
_QUIET_MODULES = {"pam_rootok.so", "pam_limits.so", "pam_keyinit.so", "pam_unix.so", "pam_permit.so",
                  "pam_deny.so", "pam_env.so", "pam_mail.so"}
_ENV_LINE = re.compile(r"""\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=("[^"$\\`]*"|'[^']*'|[^"'\s$\\`]*)\s*""")


def su(inv: Invocation) -> int:
    """``su [-s SHELL] [-c CMD] USER [ARG...]`` and ``runuser`` in su's form."""
    return _run(inv, runuser=False)


def runuser(inv: Invocation) -> int:
    """``runuser -u USER [--] CMD [ARG...]``, or su's form (PAM service ``runuser``)."""
    return _run(inv, runuser=True)


def _run(inv: Invocation, runuser: bool) -> int:
    argv = inv.argv[1:]
    if argv[:1] == ["-"]:
        raise Defer(f"{inv.name} - (a login shell)")
    try:
        opts, rest = _args.parse(inv, _RUNUSER if runuser else _SU, argv)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    command = shell_opt = user = None
    for k, v in opts:
        if k == "c":
            command = v
        elif k == "s":
            shell_opt = v
        elif k == "u":
            user = v
        elif k == "f":
            pass  # passed to csh/tcsh only
        else:
            raise Defer(f"{inv.name} -{k}" if len(k) == 1 else f"{inv.name} --{k}")
    if user is not None and command is None:
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if not rest:
            raise Defer("runuser -u without a command (an interactive shell)")
        program, args = rest[0], rest[1:]
    else:
        if user is not None:
            raise Defer("runuser -u with -c")
        if rest[:1] == ["-"]:
            raise Defer(f"{inv.name} - (a login shell)")
        user, args = (rest[0], rest[1:]) if rest else ("root", [])
        if command is None:
            raise Defer(f"{inv.name} without -c runs an interactive shell")
        program = None
    db = UserDB(inv)
    ent = db.user(user)
    if ent is None:
        inv.err(f"{inv.name}: user {user} does not exist or the user entry does not contain all the "
                f"required fields\n")
        return 1
    _check_account(inv, user)
    name, uid, gid, home, pw_shell = ent[0], int(ent[2]), int(ent[3]), ent[5], ent[6] or "/bin/sh"
    shell = shell_opt or pw_shell
    env = dict(inv.env)
    env.update(HOME=home, SHELL=shell)
    if uid:
        env.update(USER=name, LOGNAME=name)
    env.update(_pam_environment(inv, "runuser" if runuser else "su", name))
    groups = tuple(dict.fromkeys([gid] + [g for g in db.groups_of(name)]))
    view = UserView(inv.fs, Credentials(uid, gid, groups, name))
    if program is not None:
        cmd = [program] + args
    else:
        # su execs the shell with its basename as argv[0] (what "$0" and dash's messages show);
        # the model's run looks a name up in PATH, so the name must lead to the same file
        cmd = [_shell_name(inv, shell, env), "-c", command] + args
    if inv.run is None:
        raise Defer(f"{inv.name}: no interpreter to run the command")
    status, out, err = inv.run(cmd, bytes(inv.stdin), env, inv.cwd, view)
    inv.out(out)
    inv.err(err)
    return status


def _shell_name(inv: Invocation, shell: str, env: dict[str, str]) -> str:
    """``basename(shell)`` when PATH finds that very file under it; else defers."""
    name = posixpath.basename(shell)
    try:
        want = inv.fs.stat(shell)
    except OSError:
        raise Defer(f"{inv.name}: the shell {shell} is not in the image (su fails to execute it)") from None
    for d in env.get("PATH", "").split(":"):
        try:
            st = inv.fs.stat(posixpath.join(d or ".", name))
        except OSError:
            continue
        if (st.st_ino, st.st_dev) == (want.st_ino, want.st_dev):
            return name
        break
    raise Defer(f"{inv.name}: the shell {shell} is not the {name} PATH finds")


def _check_account(inv: Invocation, user: str) -> None:
    """pam_unix's account check: an expiry date in the shadow entry is decided at boot."""
    try:
        text = inv.fs.read_bytes("/etc/shadow").decode("utf-8", "surrogateescape")
    except OSError:
        return
    for line in text.splitlines():
        f = line.split(":")
        if f[0] == user and len(f) > 7 and f[7].strip():
            raise Defer(f"{inv.name}: {user}'s account has an expiry date (pam_unix decides it on the day)")


def _pam_environment(inv: Invocation, service: str, user: str) -> dict[str, str]:
    """The variables the PAM session of ``service`` puts in the environment (module note)."""
    env: dict[str, str] = {}
    for module, args in _pam_session(inv, f"/etc/pam.d/{service}", 0):
        if module not in _QUIET_MODULES:
            raise Defer(f"{inv.name}: the PAM module {module} of /etc/pam.d/{service} is not modelled")
        if module == "pam_env.so":
            env.update(_pam_env(inv, args))
        elif module == "pam_mail.so":
            if any(not a.startswith(("nopen", "quiet", "standard", "empty", "noenv")) for a in args) \
                    or "noenv" in args:
                raise Defer(f"{inv.name}: pam_mail.so {' '.join(args)}")
            env["MAIL"] = f"/var/mail/{user}"
    return env


def _pam_session(inv: Invocation, path: str, depth: int) -> list[tuple[str, list[str]]]:
    """The session modules of a PAM file, ``@include``s followed (type ``session`` only)."""
    if depth > 8:
        raise Defer(f"{inv.name}: PAM includes nested too deep")
    try:
        text = inv.fs.read_bytes(path).decode("utf-8", "surrogateescape")
    except OSError:
        raise Defer(f"{inv.name}: no {path} (PAM would use /etc/pam.d/other)") from None
    out = []
    for line in text.splitlines():
        words = line.split("#")[0].split()
        if not words:
            continue
        if words[0] == "@include" and len(words) == 2:
            out += _pam_session(inv, posixpath.join("/etc/pam.d", words[1]), depth + 1)
            continue
        kind = words[0].lstrip("-")
        if kind != "session":
            continue
        if len(words) < 3 or words[1].startswith("[") and not words[1].endswith("]"):
            raise Defer(f"{inv.name}: a PAM line of {path} is not modelled: {line.strip()}")
        out.append((posixpath.basename(words[2]), words[3:]))
    return out


def _pam_env(inv: Invocation, args: list[str]) -> dict[str, str]:
    """pam_env: ``/etc/security/pam_env.conf`` (must be empty), then the ``readenv`` files."""
    conf = _read_lines(inv, "/etc/security/pam_env.conf")
    if any(line.strip() and not line.lstrip().startswith("#") for line in conf):
        raise Defer(f"{inv.name}: /etc/security/pam_env.conf has settings (not modelled)")
    opts = dict(a.split("=", 1) if "=" in a else (a, "") for a in args)
    if set(opts) - {"readenv", "envfile", "user_readenv"}:
        raise Defer(f"{inv.name}: pam_env.so {' '.join(args)}")
    env: dict[str, str] = {}
    if opts.get("readenv", "1") not in ("0",):
        for line in _read_lines(inv, opts.get("envfile", "/etc/environment")):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            m = _ENV_LINE.fullmatch(line)
            if not m:
                raise Defer(f"{inv.name}: a pam_env line is not modelled: {line.strip()}")
            value = m.group(2)
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            env[m.group(1)] = value
    return env


def _read_lines(inv: Invocation, path: str) -> list[str]:
    try:
        return inv.fs.read_bytes(path).decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return []
