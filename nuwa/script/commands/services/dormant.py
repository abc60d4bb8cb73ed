"""Clients of daemons and probes of state that only a booted system has, answered as a dormant
image answers them.

The rewriting rule of offline patching (issue 13): a probe of running state is answered "not
running"; a command whose only effect is on running state is dropped and reported. The
programs here are the clients maintainer scripts call to ask a daemon something or to tell it
to go away; on an image that is not running, no daemon listens, and the complete effect of the
client is the message and status it gives when it cannot reach one. That is simulated, like
``pidof`` (``procs.py``) and ``ss`` (``netprobes.py``). Every form that would *start* a daemon,
or whose answer depends on more than "nothing runs", is deferred with the reason.

- ``epmd`` (erlang-base 1:25.2.3, ``erts/epmd/src/epmd.c`` ``main`` and ``epmd_cli.c``): the
  client commands ``-kill``, ``-names``, ``-started``, ``-dump``, ``-stop NAME`` connect to the
  local epmd (``conn_to_epmd``: ::1 then 127.0.0.1 on the port); nothing listens, so they print
  "epmd: Cannot connect to local epmd" on stderr (nothing under ``-started``) and exit 1.
  Judged against the real epmd in a chroot of a bookworm tree inside an empty network
  namespace (``unshare -n``), where nothing can listen (tests/script/test_services_dormant.py).
"""

from __future__ import annotations

from nuwa.script.context import Defer, Invocation

# ---- epmd ------------------------------------------------------------------------------------

#: epmd.c ``usage()`` as Debian 12's erlang-base prints it (built with HAVE_SYSTEMD_DAEMON, so
#: the ``-systemd`` lines are there); EPMD_PORT_NO is 4369
_EPMD_USAGE = """\
usage: epmd [-d|-debug] [DbgExtra...] [-address List]
            [-port No] [-daemon] [-relaxed_command_check]
       epmd [-d|-debug] [-port No] [-names|-kill|-stop name]

See the Erlang epmd manual page for info about the usage.

Regular options
    -address List
        Let epmd listen only on the comma-separated list of IP
        addresses (and on the loopback interface).
    -port No
        Let epmd listen to another port than default 4369
    -d
    -debug
        Enable debugging. This will give a log to
        the standard error stream. It will shorten
        the number of saved used node names to 5.

        If you give more than one debug flag you may
        get more debugging information.
    -daemon
        Start epmd detached (as a daemon)
    -relaxed_command_check
        Allow this instance of epmd to be killed with
        epmd -kill even if there are registered nodes.
        Also allows forced unregister (epmd -stop).
    -systemd
        Wait for socket from systemd. The option makes sense
        when started from .socket unit.

DbgExtra options
    -packet_timeout Seconds
        Set the number of seconds a connection can be
        inactive before epmd times out and closes the
        connection (default 60).

    -delay_accept Seconds
        To simulate a busy server you can insert a
        delay between epmd gets notified about that
        a new connection is requested and when the
        connections gets accepted.

    -delay_write Seconds
        Also a simulation of a busy server. Inserts
        a delay before a reply is sent.

Interactive options
    -names
        List names registered with the currently running epmd
    -kill
        Kill the currently running epmd
        (only allowed if -names show empty database or
        -relaxed_command_check was given when epmd was started).
    -stop Name
        Forcibly unregisters a name with epmd
        (only allowed if -relaxed_command_check was given when 
        epmd was started).
"""

#: epmd.c's options that take a number whose ``atoi`` must not be 0 (else usage)
_EPMD_NUMERIC = {"-packet_timeout", "-delay_accept", "-delay_write", "-port"}
_EPMD_FLAGS = {"-d", "-debug", "-daemon", "-relaxed_command_check", "-systemd"}
_EPMD_CLIENT = {"-kill", "-names", "-started", "-dump"}


def c_atoi(s: str) -> int:
    """glibc ``atoi``: ``(int) strtol(s, NULL, 10)`` — leading blanks, a sign, digits; 0 when
    there are none; strtol's clamp to the long range, then the cast to a 32-bit int."""
    i, n = 0, len(s)
    while i < n and s[i] in " \t\n\v\f\r":
        i += 1
    neg = False
    if i < n and s[i] in "+-":
        neg, i = s[i] == "-", i + 1
    j = i
    while j < n and s[j].isascii() and s[j].isdigit():
        j += 1
    v = int(s[i:j]) if j > i else 0
    v = -v if neg else v
    v = max(-(2**63), min(2**63 - 1, v))
    v &= 0xFFFFFFFF
    return v - 2**32 if v >= 2**31 else v


def epmd(inv: Invocation) -> int:
    """``epmd [-d] [-port N] [-address L] -kill|-names|-started|-dump|-stop NAME``: no epmd runs.

    The arguments are read in ``main``'s order, so a usage error before the client command is
    reported as epmd reports it (the usage text, exit 1); the client command then fails to
    connect. A command line that ends without a client command would run the daemon itself.
    """
    args = inv.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        rest = len(args) - i  # main's argc at this point
        if a in _EPMD_FLAGS:
            i += 1
        elif a in _EPMD_NUMERIC:
            if rest == 1 or c_atoi(args[i + 1]) == 0:
                inv.err(_EPMD_USAGE)
                return 1
            i += 2
        elif a == "-address":
            if rest == 1:
                inv.err(_EPMD_USAGE)
                return 1
            i += 2
        elif a in _EPMD_CLIENT or a == "-stop":
            if rest != (2 if a == "-stop" else 1):
                inv.err(_EPMD_USAGE)
                return 1
            if a == "-stop" and len(args[i + 1].encode("utf-8", "surrogateescape")) > 1000:
                inv.out("epmd: Name too long!")  # epmd_cli.c stop_cli: printf, no newline
                return 1
            if a != "-started":  # -started sets g->silent: conn_to_epmd prints nothing
                inv.err("epmd: Cannot connect to local epmd\n")
            return 1
        else:
            inv.err(_EPMD_USAGE)
            return 1
    # `epmd`, `epmd -daemon`, `epmd -systemd`: the daemon itself, which a dormant image does not
    # run; a script that starts it expects it to keep running, which only the booted system can
    raise Defer(" ".join(["epmd", *args]) + ": would start the epmd daemon (no client command)")
