"""External commands for the interpreter: a mixin of :class:`nuwa.script.interp.Shell`.

A command name resolves through ``PATH`` *in the image* (dash's ``find_command``); the
program found runs as the command model the shell's :class:`nuwa.script.context.ModelSet`
holds under its basename, with an
:class:`nuwa.script.context.Invocation`. No model, or a model raising ``Defer``, makes a
deferral: recorded with its context, or -- when its output is used -- the whole script is
deferred (:class:`nuwa.script.record.ScriptDeferred`). Nothing is ever executed on the host.
"""

from __future__ import annotations

import posixpath

from nuwa.script.builtins import BUILTINS
from nuwa.script.context import DEFERRED, DROPPED, SIMULATED, Defer, Drop, Invocation
from nuwa.script.control import EXPORT, ExitShell
from nuwa.script.fdtable import Desc, FileDesc, InBuf, NullDesc, OutBuf
from nuwa.script.parser import ParseError, parse
from nuwa.script.record import CommandRecord, DeferredCommand, ScriptDeferred

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BIN_DIRS = frozenset(DEFAULT_PATH.split(":"))

#: interpreters of ``#!`` lines whose scripts the simulator runs itself (name -> bash mode)
_SHELLS = {"sh": False, "dash": False, "bash": True}


#: (PATH, working directory) -> the directories :meth:`ExternalCommands._path_dirs` gives
_PATH_MEMO: dict[tuple[str | None, str], tuple[list[str], frozenset[str]]] = {}


class ExternalCommands:
    """Mixin: PATH lookup in the image, model calls, deferral, ``Invocation.run``."""

    def _candidates(self, name: str) -> list[str]:
        """The paths ``exec`` tries for ``name``: itself if it holds a ``/``, else each ``PATH`` entry's."""
        if "/" in name:
            return [self.abspath(name)]
        return [d + name for d in self._path_dirs()[0]]

    def _path_dirs(self) -> tuple[list[str], frozenset[str]]:
        """Each ``PATH`` entry made absolute against the working directory: in order with a
        trailing ``/`` (to join a name to), and as a set (to ask whether a directory is one);
        remembered while ``PATH`` and the working directory stay the same."""
        path, cwd = self.getvar("PATH"), self.cwd
        memo = _PATH_MEMO.get((path, cwd))
        if memo is None:
            dirs = [self.abspath(d or ".") for d in (DEFAULT_PATH if path is None else path).split(":")]
            memo = ([posixpath.join(d, "") for d in dirs], frozenset(dirs))
            if len(_PATH_MEMO) >= 64:
                _PATH_MEMO.clear()
            _PATH_MEMO[(path, cwd)] = memo
        return memo

    def find_command(self, name: str) -> str | None:
        """Resolve ``name`` through ``PATH`` in the image (dash's ``find_command``).

        As dash does, a name found through a ``PATH`` of absolute directories is remembered
        (``hashed``, per shell process, copied into subshells as a fork copies it) and later
        taken from there while that file is still an executable; a changed ``PATH`` searches
        again, and ``hash -r`` forgets them all. Names not found are never remembered."""
        path = self.getvar("PATH")
        hit = None if "/" in name else self.hashed.get((name, path))
        if hit is not None and self._executable(hit):
            return hit
        found = next((p for p in self._candidates(name) if self._executable(p)), None)
        if "/" in name:
            return found
        if found is not None and path is not None and all(d.startswith("/") for d in path.split(":")):
            self.hashed[(name, path)] = found
        elif hit is not None:
            del self.hashed[(name, path)]
        return found

    def tracked(self, name: str) -> str | None:
        """Where the hash table remembers ``name`` under the current ``PATH`` (None: not
        remembered), as dash tells it without looking again."""
        return None if "/" in name else self.hashed.get((name, self.getvar("PATH")))

    def _search_dir(self, path: str) -> bool:
        """Is ``path`` in a system bin directory or a directory of the current ``PATH``?"""
        d = posixpath.dirname(path)
        return d in _BIN_DIRS or d in self._path_dirs()[1]

    def _denied(self, name: str) -> bool:
        """Would ``execve`` fail with EACCES (rather than ENOENT) for ``name``?"""
        for p in self._candidates(name):
            try:
                st = self.fs.stat(p)
            except (OSError, ValueError):
                continue
            if "/" in name or st.is_reg:  # dash's PATH search passes over directories
                return True
        return False

    def _executable(self, p: str) -> bool:
        try:
            st = self.fs.stat(p)
        except (OSError, ValueError):
            return False
        return st.is_reg and bool(st.st_mode & 0o111)

    def run_external(self, argv: list[str], assigns, nested: bool = False, prefix: str = "") -> int:
        name = argv[0]
        path = self.find_command(name)
        if path is None:
            # dash: a path that exists but cannot be executed (a directory, no x bit) is
            # "Permission denied", status 126; found through PATH, the message but status 127
            denied = self._denied(name)
            st = 126 if denied and "/" in name else 127
            why = "Permission denied" if denied else "not found"
            self.error(f"{prefix}{name}: {why}")
            self.record.add(CommandRecord(self.lineno, argv[:8], "missing", SIMULATED, why, st))
            return st
        env = self.environ()
        for n, v in assigns:
            env[n] = v
        stdin_desc = self.fds.get(0)

        def stdin() -> bytes:  # read only if the model (or a deferral) asks for it
            if stdin_desc is None:
                return b""
            try:
                return stdin_desc.read(-1)
            except OSError as e:  # `cmd < /`: the program would meet the read error itself, at boot
                raise ScriptDeferred(f"the standard input of `{name}` cannot be read ({e.strerror})",
                                     self.lineno) from None

        inv = Invocation(
            argv=list(argv), fs=self.fs, cwd=self.cwd, env=env, stdin=stdin, umask=self.umask,
            run=self._model_run, state=self.model_state, spawn=self.spawn_script, models=self.models,
            stdin_fd=stdin_desc,
        )
        model = self.models.get(posixpath.basename(path))
        if model is not None and not self._search_dir(path) and self.shell_script(path) is not None:
            # a model stands for the program of that name in the bin directories or the
            # command search path; a shell script of the same name elsewhere, called by its
            # path (dh-elpa's /usr/lib/dh-elpa/helper/install is not coreutils' install), is
            # the image's own code, interpreted below
            model = None
        if model is None and posixpath.basename(path) in _SHELLS:
            st = self.run_shell_command(path, argv, env, stdin_desc, nested)
            if st is not None:
                return st
        if model is None:
            shebang = self.shell_script(path)
            if shebang is not None:
                return self.run_script_file(path, argv, env, stdin_desc, shebang, nested)
        # a model that defers part-way leaves nothing of what it wrote: the deferred program
        # runs whole at boot (an overlay savepoint; other backends have none)
        sp = self.fs.savepoint() if model is not None and hasattr(self.fs, "savepoint") else None
        try:
            if model is None:
                raise Defer(f"no model for {posixpath.basename(path)}")
            st = int(model(inv))
        except Defer as d:
            if sp is not None:
                self.fs.rollback_to(sp)
            if nested:
                raise
            return self.defer_command(argv, d.reason, env, inv.stdin)
        except Drop as d:
            self.record.add(CommandRecord(self.lineno, argv[:8], "external", DROPPED, d.reason, d.status))
            return d.status
        finally:
            if sp is not None and sp.alive:
                self.fs.release(sp)
        self.write(1, inv.stdout)  # no copy: every descriptor copies what it keeps
        self.write(2, inv.stderr)
        self.record.add(CommandRecord(self.lineno, argv[:8], "external", SIMULATED, status=st))
        return st

    def shell_script(self, path: str) -> tuple[bool, str] | None:
        """(bash mode, option argument) when ``path`` starts with a ``#!`` line naming a shell."""
        try:
            h = self.fs.open_handle(path)
            try:
                head = h.pread(0, 256)
            finally:
                h.close()
        except (OSError, ValueError):
            return None
        if not head.startswith(b"#!"):
            return None
        words = head[2:].split(b"\n", 1)[0].decode("utf-8", "surrogateescape").split(None, 1)
        if not words:
            return None
        prog, arg = posixpath.basename(words[0]), (words[1].strip() if len(words) > 1 else "")
        if prog == "env" and arg:
            prog, _, arg = arg.partition(" ")
            prog, arg = posixpath.basename(prog), arg.strip()
        if prog not in _SHELLS:
            return None
        return _SHELLS[prog], arg

    def run_script_file(self, path: str, argv: list[str], env: dict, stdin_desc, shebang, nested: bool) -> int:
        """Run a shell script found in the image (``update-ca-certificates``, a hook) ourselves.

        The kernel would start ``/bin/sh PATH ARGS`` (the rest of the ``#!`` line as one
        argument). See :meth:`run_child_shell` for the atomicity rule.
        """
        bash, arg = shebang
        name = posixpath.basename(path)
        opts = set()
        if arg:
            if not (arg.startswith("-") and arg[1:].isalpha() and set(arg[1:]) <= set("eux")):
                return self._defer_or_raise(argv, f"{name}: #! option {arg!r} not modelled", env,
                                            self._stdin_reader(stdin_desc), nested)
            opts = set(arg[1:])
        arg0 = argv[0] if "/" in argv[0] else path
        return self.run_child_shell(argv, ("file", path), arg0, argv[1:], env, stdin_desc, bash, opts, nested,
                                    f"{name} (shell script)")

    def run_shell_command(self, path: str, argv: list[str], env: dict, stdin_desc, nested: bool) -> int | None:
        """``sh -c CMD [NAME [ARG...]]`` and ``sh [-eux] FILE [ARG...]`` run in a child shell.

        Returns None for forms not handled here (interactive shells, other options), which
        the caller then defers like any program without a model.
        """
        bash = _SHELLS[posixpath.basename(path)]
        args = argv[1:]
        opts: set[str] = set()
        while args and args[0].startswith("-") and args[0] not in ("-", "--", "-c") and args[0][1:].isalpha():
            if not set(args[0][1:]) <= set("euxn"):
                return None
            opts |= set(args[0][1:])
            args = args[1:]
        if args and args[0] == "--":
            args = args[1:]
        if "n" in opts:
            return self._syntax_check(argv, args, env, stdin_desc, bash, nested)
        if len(args) >= 2 and args[0] == "-c":
            arg0 = args[2] if len(args) > 2 else argv[0]
            return self.run_child_shell(argv, ("text", args[1]), arg0, args[3:], env, stdin_desc, bash, opts,
                                        nested, f"{argv[0]} -c")
        if args and not args[0].startswith("-"):
            script = self.abspath(args[0])
            if not self.fs.exists(script):
                self.error(f"{argv[0]}: 0: cannot open {args[0]}: No such file")
                return 2
            return self.run_child_shell(argv, ("file", script), args[0], args[1:], env, stdin_desc, bash, opts,
                                        nested, f"{argv[0]} {args[0]}")
        return None

    def _syntax_check(self, argv, args: list[str], env: dict, stdin_desc, bash: bool, nested: bool) -> int:
        """``sh -n FILE`` / ``sh -n -c TEXT``: read the commands without running them (dash's
        ``-n``, which mkinitramfs' ``set_initlist`` uses on every hook). A script that parses
        gives 0; a syntax error is deferred, dash's message for it not being modelled."""
        try:
            if args and args[0] == "-c" and len(args) >= 2:
                text = args[1]
            elif args and not args[0].startswith("-"):
                text = self.fs.read_bytes(self.abspath(args[0])).decode("utf-8", "surrogateescape")
            else:
                return self._defer_or_raise(argv, "sh -n without a script is not modelled", env,
                                            self._stdin_reader(stdin_desc), nested)
            parse(text, bash=bash)
        except (ParseError, RecursionError, OSError) as e:
            return self._defer_or_raise(argv, f"{argv[0]} -n: syntax error or unreadable script ({e})", env,
                                        self._stdin_reader(stdin_desc), nested)
        self.record.add(CommandRecord(self.lineno, argv[:8], "script", SIMULATED, "syntax checked", 0))
        return 0

    @staticmethod
    def _stdin_reader(stdin_desc):
        def stdin() -> bytes:
            return stdin_desc.read(-1) if stdin_desc is not None else b""
        return stdin

    def run_child_shell(self, argv, source, arg0: str, positional: list[str], env: dict, stdin_desc, bash: bool,
                        opts: set, nested: bool, label: str) -> int:
        """Run shell code as a child process would run, inside the simulator.

        The child is *atomic*: any command in it that would be deferred undoes everything the
        child did (an overlay savepoint) and defers the whole invocation instead, because
        later commands in the child may consume the files the deferred one would have
        written. Without savepoints (a backend that is not an overlay) it is deferred unrun.
        """
        stdin = self._stdin_reader(stdin_desc)
        savepoint = getattr(self.fs, "savepoint", None)
        if savepoint is None:
            return self._defer_or_raise(argv, f"{label}: no savepoint to run it atomically", env, stdin, nested)
        try:
            kind, value = source
            text = value if kind == "text" else self.fs.read_bytes(value).decode("utf-8", "surrogateescape")
            prog = parse(text, bash=bash)
        except (ParseError, RecursionError, OSError) as e:
            return self._defer_or_raise(argv, f"{label}: cannot parse: {e}", env, stdin, nested)
        if self.depth + 1 > self.limits.max_depth:
            raise ScriptDeferred(f"scripts nested deeper than {self.limits.max_depth}", self.lineno)
        # the child shares our descriptors: what it reads from fd 0 is gone for us too. Every
        # open fd is inherited, as exec(2) keeps them: ucf run from a postinst talks to
        # debconf over the fd 3 the postinst's confmodule opened
        fds = {k: v for k, v in {**self.fds, 0: stdin_desc}.items() if v is not None}
        c = self.start_shell(arg0=arg0, positional=positional, fds=fds, cwd=self.cwd, umask=self.umask, env=env,
                             initial_env=self.initial_env, opts=opts, depth=self.depth + 1)
        c.strict_defer = True
        c.bash = bash
        marks = (len(self.record.entries), dict(self.record.counts), len(self.deferred))
        sp = savepoint()
        try:
            st = c.run_to_end(prog)
        except ScriptDeferred as d:
            self.fs.rollback_to(sp)
            del self.record.entries[marks[0]:]
            self.record.counts.clear()
            self.record.counts.update(marks[1])
            del self.deferred[marks[2]:]
            return self._defer_or_raise(argv, f"{label}: {d.reason}", env, stdin, nested)
        finally:
            c.discard()
        self.fs.release(sp)
        self.record.add(CommandRecord(self.lineno, argv[:8], "script", SIMULATED, f"interpreted {label}", st))
        return st

    def spawn_script(self, path: str, argv: list[str], env: dict[str, str], fds: dict) -> int:
        """Extension point: a model's program starts a script of the image as its child.

        debconf's frontend (a Perl program) runs the maintainer script with its protocol pipes
        as stdin and stdout; a model of such a program calls this (``Invocation.spawn``) with
        ``fds``, the child's open file descriptions (:class:`nuwa.script.fdtable.Desc`; the
        caller's other fds are inherited, as through exec(2)). ``path`` must start with a ``#!`` line naming a shell;
        ``argv[0]`` is the child's ``$0``. The child shares the run record, the deferral list
        and the budgets. It is not atomic: its commands are simulated, dropped or deferred by
        the usual rules (strictly, if the caller is itself an atomic child), and a whole-script
        deferral inside it propagates, because the model's program is the rest of the
        caller's invocation. The deferral environment is relative to ``env``. Returns the
        child's exit status; raises :class:`Defer` if ``path`` cannot be run as a shell script
        (nothing has run then).
        """
        name = posixpath.basename(path)
        shebang = self.shell_script(path)
        if shebang is None:
            raise Defer(f"{name} is not a shell script")
        bash, arg = shebang
        if arg and not (arg.startswith("-") and arg[1:].isalpha() and set(arg[1:]) <= set("eux")):
            raise Defer(f"{name}: #! option {arg!r} not modelled")
        try:
            prog = parse(self.fs.read_bytes(path).decode("utf-8", "surrogateescape"), bash=bash)
        except (ParseError, RecursionError, OSError) as e:
            raise Defer(f"{name}: cannot parse: {e}") from None
        if self.depth + 1 > self.limits.max_depth:
            raise ScriptDeferred(f"scripts nested deeper than {self.limits.max_depth}", self.lineno)
        c = self.start_shell(arg0=argv[0], positional=argv[1:],
                             fds={k: v for k, v in {**self.fds, **fds}.items() if v is not None},
                             cwd=self.cwd, umask=self.umask, env=env, initial_env=dict(env),
                             opts=set(arg[1:]) if arg else set(), depth=self.depth + 1)
        c.strict_defer = getattr(self, "strict_defer", False)
        c.bash = bash  # the script runs by its own #! interpreter (mariadb-server's is bash)
        try:
            st = c.run_to_end(prog)
        finally:
            c.discard()
        self.record.add(CommandRecord(self.lineno, argv[:8], "script", SIMULATED, f"interpreted {path} as a child", st))
        return st

    def _defer_or_raise(self, argv, reason: str, env: dict, stdin, nested: bool) -> int:
        if nested or getattr(self, "strict_defer", False):
            raise Defer(reason) if nested else ScriptDeferred(reason, self.lineno)
        return self.defer_command(argv, reason, env, stdin() if callable(stdin) else stdin)

    def defer_command(self, argv, reason: str, env: dict, stdin: bytes) -> int:
        """Record a deferred command, or defer the whole script if its output is used."""
        if getattr(self, "strict_defer", False):
            raise ScriptDeferred(f"`{argv[0]}` would be deferred ({reason})", self.lineno)
        if getattr(self, "exec_mode", False):
            raise ScriptDeferred(f"`exec` of deferred `{argv[0]}` replaces the script ({reason})", self.lineno)
        redirects = self._carried_redirects(argv, reason)
        diff = {k: v for k, v in env.items() if self.initial_env.get(k) != v}
        diff.update({k: None for k in self.initial_env if k not in env})
        self.deferred.append(DeferredCommand(list(argv), self.cwd, diff, self.umask, stdin, reason, self.lineno,
                                             redirects))
        self.record.add(CommandRecord(self.lineno, argv[:8], "external", DEFERRED, reason))
        self.tainted, self.tainted_by = True, argv[0]
        return 0

    def _carried_redirects(self, argv, reason: str) -> tuple:
        """The output redirections a deferred command takes to the first boot with it.

        Its output going to a file of the image (``cmd > FILE 2>&1``, gdk-pixbuf's loaders.cache,
        fontconfig's log) goes there at boot: the entry replays ``> FILE``/``>> FILE`` (and
        ``2>&1`` or ``2> /dev/null``). Only for a file opened for this command and not written
        yet; a later write to it, or a later command naming it, defers the whole script (the
        content exists only after the boot). Output used any other way (captured, piped)
        defers the whole script, as before.
        """
        out, err = self.fds.get(1), self.fds.get(2)
        carried = []
        for fd, desc in ((1, out), (2, err)):
            if desc is None:
                continue
            if fd == 2 and desc is out and carried:
                carried.append((2, ">&", "1"))
            elif isinstance(desc, FileDesc):
                if not desc.writable or desc.readable or desc.pos or desc.carried_by:
                    raise ScriptDeferred(f"the output of deferred `{argv[0]}` is {desc.usage}, a file already "
                                         f"in use ({reason})", self.lineno)
                carried.append((fd, ">>" if desc.append else ">", desc.path))
            elif isinstance(desc, NullDesc):
                carried.append((fd, ">", "/dev/null"))
            elif fd == 1 and desc.used:
                raise ScriptDeferred(f"the output of deferred `{argv[0]}` is {desc.usage} ({reason})", self.lineno)
        for fd, op, target in carried:
            desc = self.fds[fd]
            if isinstance(desc, FileDesc):
                desc.carried_by = argv[0]
        return tuple(carried)

    def pending_outputs(self) -> dict[str, str]:
        """Files deferred commands write at boot (path -> the command): their content is not
        known offline."""
        out = {}
        for d in self.deferred:
            for _fd, op, target in d.redirects:
                if op in (">", ">>") and target != "/dev/null":
                    out[target] = d.argv[0] if d.argv else ""
        return out

    def check_pending(self, argv: list[str]) -> None:
        """Defer the script when a command names a file a deferred command writes at boot."""
        pending = self.pending_outputs()
        if not pending:
            return
        for w in argv[1:]:
            p = posixpath.normpath(posixpath.join(self.cwd, w)) if w else w
            if p in pending:
                raise ScriptDeferred(f"`{argv[0]}` names {w}, which deferred `{pending[p]}` writes only at boot",
                                     self.lineno)

    def _model_run(self, argv: list[str], stdin, env: dict[str, str] | None = None,
                   cwd: str | None = None, fs=None) -> tuple[int, bytes, bytes]:
        """``Invocation.run``: a model runs another program (``xargs``, ``find -exec``).

        ``stdin`` is the bytes the program reads, or a live description (``Invocation.stdin_fd``)
        it shares with the caller.

        ``env``, when given, replaces the environment the program receives (``env -i``,
        ``env NAME=VALUE cmd``); the command is then looked up in that environment's PATH,
        as execvp(3) does. ``cwd``, when given, is the program's working directory (``find
        -execdir`` runs it in the matched file's directory). ``fs``, when given, is the
        filesystem view the program and its children see (``su`` gives another user's).
        """
        c = self.subshell()
        if fs is not None:
            c.fs = fs
        if cwd is not None:
            c.cwd = cwd
        if env is not None:  # an exec'd program sees only its environment, no shell variables
            c.vars = {k: (v, EXPORT) for k, v in env.items()}
        out, err = OutBuf(self.limits, "captured by a command model"), OutBuf(self.limits, "captured")
        # the program inherits the caller's other descriptors, as through fork(2) and exec(2):
        # ucf run by `env` from a postinst writes debconf commands to the confmodule's fd 3
        c.fds = {**{k: v for k, v in self.fds.items() if k > 2 and v is not None},
                 0: stdin if isinstance(stdin, Desc) else InBuf(stdin), 1: out, 2: err}
        self.limits.step(self.lineno)
        try:
            if argv and argv[0] in ("echo", "printf", "test", "[", "true", "false") and c.find_command(argv[0]):
                st = BUILTINS[argv[0]](c, argv)
            else:
                st = c.run_external(argv, [], nested=True)
        except ExitShell as e:
            st = e.status
        finally:
            c.discard()
        return st, bytes(out.data), bytes(err.data)
