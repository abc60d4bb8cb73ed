"""Model of ``squid -k parse`` (squid 5.7, Debian 12): the configuration checked, not run.

squid's postinst reads ``cache_dir``, ``cache_effective_user`` and ``cache_effective_group``
out of ``squid -k parse 2>&1 | grep "Processing:"``. ``-k parse`` needs no running squid: it
reads the configuration (``-f FILE``, default ``/etc/squid/squid.conf``) with the debug level
``ALL,1``, so every directive line is logged, runs the checks made after parsing
(``configDoConfigure``) and exits with the number of unrecognized lines. Everything goes to
stderr, each line stamped ``YYYY/MM/DD HH:MM:SS| `` in the image's local time (the clock is
the host's, as for ``date``: :mod:`nuwa.script.commands.coreutils.datecmd`).

What is printed, in order (``src/main.cc`` ``SquidMain``, ``src/cache_cf.cc``):

- the six ``Startup:`` lines of the authentication schemes Debian's build has;
- the reading (:mod:`squidconf`): ``Processing Configuration File: FILE (depth N)`` per file,
  ``Processing: LINE`` per line, ``FILE(N): unrecognized: 'NAME'`` per unknown directive;
- ``configDoConfigure``: the host name check (``getMyHostname``) when ``visible_hostname`` is
  not set: the name the VM boots with (``/etc/hostname``) found in ``/etc/hosts`` prints
  nothing; one that needs DNS is deferred (:func:`miscutils.sysinfo.hosts_lookup`). Then
  ``requirePathnameExists`` of the MIME table, unlinkd, the log daemon (the default
  ``access_log`` is ``daemon:``) and the icon directory (``FATAL: NAME PATH: (errno) text``,
  which ``-k parse`` reports and goes on), the effective user (``getpwnam``, default
  ``proxy``) and group (``getgrnam``) in the image's account files, then ``Initializing
  https:// proxy context`` (the default ``tls_outgoing_options``).

A fatal error (``fatal()``) prints ``Not currently OK to rewrite swap log.``,
``storeDirWriteCleanLogs: Operation aborted.``, ``FATAL: MESSAGE``, ``Squid Cache (Version
5.7): Terminated abnormally.`` and ``PrintRusage``'s three lines, and exits 1. The three
rusage figures are the dying process's own CPU time, resident size and page faults: a
simulation has no such process, so they are printed as zero (a judge masks these numbers as it
masks the time stamps).

Deferred: every ``-k`` action but ``parse`` (they signal the running squid named by the pid
file), any other option (``-n`` changes ``${service_name}``, ``-v`` prints the build), and what
:mod:`squidconf` defers.
"""

from __future__ import annotations

from nuwa.script.commands import _args
from nuwa.script.commands._common import now_ns
from nuwa.script.commands.accounts.pwck import _lookup
from nuwa.script.commands.coreutils import datecmd
from nuwa.script.commands.miscutils.sysinfo import boot_hostname, hosts_lookup
from nuwa.script.commands.server.squidconf import Fatal, Reader, _xstrerr
from nuwa.script.context import Defer, Invocation

CONFIG = "/etc/squid/squid.conf"
STARTUP = ["Startup: Initializing Authentication Schemes ...",
           *(f"Startup: Initialized Authentication Scheme '{s}'" for s in ("basic", "digest", "negotiate", "ntlm")),
           "Startup: Initialized Authentication."]
#: requirePathnameExists's names and Debian's compiled-in paths, in configDoConfigure's order
REQUIRED = [("MIME Config Table", "/usr/share/squid/mime.conf"), ("unlinkd_program", "/usr/lib/squid/unlinkd"),
            ("logfile_daemon", "/usr/lib/squid/log_file_daemon"), ("Icon Directory", "/usr/share/squid/icons")]
#: the -k words in the order mainHandleCommandLineOption tries them (a prefix picks the first)
_K_WORDS = ["reconfigure", "rotate", "debug", "shutdown", "interrupt", "kill", "restart", "check", "parse"]
_SPEC = _args.spec("f:k:")


def squid(inv: Invocation) -> int:
    """``squid -k parse [-f FILE]``; see the module note."""
    try:
        opts, operands = _args.parse(inv, _SPEC)
    except _args.UsageError as e:
        raise Defer(f"squid: {e.text} (squid's usage text is not modelled)") from None
    config, action = CONFIG, None
    for key, value in opts:
        if key == "f":
            config = value
        else:
            action = next((w for w in _K_WORDS if w.startswith(value)), None)
    if operands or action != "parse":
        raise Defer(f"squid {' '.join(inv.argv[1:])}: only -k parse is modelled "
                    "(the other actions signal a running squid)")
    lines = list(STARTUP)
    reader = Reader(inv.fs, inv.cwd)
    status = 0
    # StoreController::store_dirs_rebuilding: set until configDoConfigure finds no cache_dir
    rebuilding = True
    try:
        try:
            reader.read(config)
        finally:
            lines += reader.log
        rebuilding = bool(reader.conf.cache_dirs)
        _after_parse(inv, reader, lines)
        status = reader.errors & 0xFF
    except Fatal as f:
        # fatal() -> storeDirWriteCleanLogs: refused while "rebuilding", else a run over no
        # cache directory whose duration (microseconds) squid prints with two decimals
        lines += (["Not currently OK to rewrite swap log.", "storeDirWriteCleanLogs: Operation aborted."]
                  if rebuilding else ["storeDirWriteCleanLogs: Starting...", "  Finished.  Wrote 0 entries.",
                                      "  Took 0.00 seconds (  0.00 entries/sec)."])
        lines += [f"FATAL: {f}", "Squid Cache (Version 5.7): Terminated abnormally."]
        status = 1
    stamp = datecmd.strftime("%Y/%m/%d %H:%M:%S| ", now_ns() // 10**9, 0, datecmd.image_zone(inv, inv.env))
    inv.err("".join(stamp + ln + "\n" for ln in lines))
    if status == 1 and lines[-1].endswith("Terminated abnormally."):
        # PrintRusage writes to the debug log without a stamp (see the module note)
        inv.err("CPU Usage: 0.000 seconds = 0.000 user + 0.000 sys\nMaximum Resident Size: 0 KB\n"
                "Page faults with physical i/o: 0\n")
    return status


def _after_parse(inv: Invocation, reader: Reader, out: list[str]) -> None:
    """``configDoConfigure``'s messages (appended to ``out``) for the configurations the
    reader accepts; raises :class:`Fatal` as squid dies."""
    conf = reader.conf
    if conf.visible_hostname is None:
        name = boot_hostname(inv)
        if hosts_lookup(inv, name) is None:
            raise Defer(f"squid -k parse: the host name {name!r} is not in /etc/hosts; DNS answers at boot")
    for what, path in REQUIRED:
        try:
            inv.fs.stat(path)
        except OSError as e:
            out.append(f"FATAL: {what} {path}: {_xstrerr(e)}")
    if not _lookup(inv, "/etc/passwd", "passwd", 0, conf.effective_user, 7):
        raise Fatal(f"getpwnam failed to find userid for effective user '{conf.effective_user}'")
    if conf.effective_group is not None and not _lookup(inv, "/etc/group", "group", 0, conf.effective_group, 4):
        raise Fatal(f"getgrnam failed to find groupid for effective group '{conf.effective_group}'")
    out.append("Initializing https:// proxy context")
