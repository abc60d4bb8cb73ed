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

import re
import stat

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


# ---- vgcfgbackup -----------------------------------------------------------------------------

#: LVM2 2.03.16 in a chroot with nothing mounted on /proc (what dpkg's chroot of a dormant image
#: is): ``create_toolcontext`` loads the configuration, then fails to find sysfs and the block
#: device majors and the command ends with EINIT_FAILED (4) before it parses its arguments
_LVM_NO_PROC = ("  /proc/mounts: _get_sysfs_dir fopen failed: No such file or directory\n"
                "  /proc/devices: fopen failed: No such file or directory\n")
_LVM_TOKEN = re.compile(r'\s+|#[^\n]*|"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?|[A-Za-z_][A-Za-z0-9_/]*|[{}=\[\],]')


def lvm_settings(text: str) -> list[tuple[str, str]] | None:
    """The settings of an LVM configuration as (``section/key``, kind) pairs, kind ``number``,
    ``string`` or ``list``; None when ``text`` is not well formed (``lib/config/config.c``'s
    grammar: sections ``name { ... }``, ``key = value``, a value a number, a quoted or bare
    string or a list ``[ v, ... ]``; ``#`` comments). A file this rejects is one lvm refuses
    with a parse error whose exact text the model does not reproduce."""
    toks, pos = [], 0
    while pos < len(text):
        m = _LVM_TOKEN.match(text, pos)
        if not m:
            return None
        pos = m.end()
        if not m.group().isspace() and not m.group().startswith("#"):
            toks.append(m.group())
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_/]*")

    def kind(t: str) -> str | None:
        if re.fullmatch(r"-?\d+(?:\.\d+)?", t):
            return "number"
        # a bare word is a string too (lvmdbusd.profile: ``output_format=json``)
        return "string" if t.startswith('"') or ident.fullmatch(t) else None

    out: list[tuple[str, str]] = []
    sections: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "}":
            if not sections:
                return None
            sections.pop()
            i += 1
        elif ident.fullmatch(t) and i + 1 < len(toks) and toks[i + 1] == "{":
            sections.append(t)
            out.append(("/".join(sections), "section"))
            i += 2
        elif ident.fullmatch(t) and i + 2 < len(toks) and toks[i + 1] == "=":
            name = "/".join([*sections, t])
            i += 2
            if kind(toks[i]):
                out.append((name, kind(toks[i])))
                i += 1
            elif toks[i] == "[":
                i += 1
                while i < len(toks) and toks[i] != "]":
                    if not kind(toks[i]):
                        return None
                    i += 1
                    if i < len(toks) and toks[i] == ",":
                        i += 1
                if i >= len(toks):
                    return None
                out.append((name, "list"))
                i += 1
            else:
                return None
        else:
            return None
    return out if not sections else None


def lvm_documented(text: str) -> dict[str, str]:
    """``section`` and ``section/key`` -> kind, from the comments of a shipped LVM configuration:
    lvm2's generated ``lvm.conf``/``lvmlocal.conf`` document every setting the program knows
    ("# Configuration option devices/scan.") followed by its default ("# scan = [ "/dev" ]"),
    whose form gives the setting's kind. A setting without a default example is left out."""
    known: dict[str, str] = {}
    pending = None
    for line in text.splitlines():
        m = re.match(r"\s*# Configuration (section|option) ([A-Za-z0-9_/]+)\.$", line)
        if m:
            pending = None
            if m.group(1) == "section":
                known[m.group(2)] = "section"
            else:
                pending = m.group(2)
            continue
        m = re.match(r"\s*#\s*([A-Za-z0-9_]+) = (.)", line)
        if pending and m and pending.rsplit("/", 1)[-1] == m.group(1):
            known[pending] = "list" if m.group(2) == "[" else "string" if m.group(2) == '"' else "number"
            pending = None
    return known


def vgcfgbackup(inv: Invocation) -> int:
    """``vgcfgbackup [...]`` (lvm2 2.03.16) on a dormant image: no volume group is visible.

    lvm2's postinst runs ``vgcfgbackup >/dev/null 2>&1 || :`` to write the metadata of the
    volume groups the *running* system sees to ``/etc/lvm/backup``. In a chroot of a dormant
    image nothing is mounted on ``/proc``: lvm reads its configuration, cannot find sysfs or
    the device majors, prints two lines and exits 4 with nothing written, whatever the
    arguments — the result real dpkg gives in a chroot, reproduced here. Deferred where the
    answer would differ: a configuration lvm might reject or warn about (its parse error, a
    setting the image's lvm.conf does not document with a default of the same kind),
    ``LVM_SYSTEM_DIR``, an image with something under ``/proc``, and an image that already has
    volume-group backups in ``/etc/lvm/backup``: it has volume groups, whose backups the booted
    system refreshes, so the call waits for the first boot.
    """
    if inv.env.get("LVM_SYSTEM_DIR"):
        raise Defer("vgcfgbackup with LVM_SYSTEM_DIR set: another configuration directory")
    creds = getattr(inv.fs, "creds", None)  # run by su/runuser as another user
    if creds is not None and creds.uid != 0:
        raise Defer("vgcfgbackup as a user other than root (judged as root only)")
    for p in ("/proc/mounts", "/proc/devices"):
        try:
            inv.fs.lstat(p)
            raise Defer(f"vgcfgbackup: the image has {p}; lvm would read it (the model answers for an empty /proc)")
        except OSError:
            pass
    try:
        backups = [n for n in inv.fs.listdir("/etc/lvm/backup") if n not in (".", "..")]
    except OSError:
        backups = []
    if backups:
        raise Defer(f"vgcfgbackup: the image has volume groups (/etc/lvm/backup/{sorted(backups)[0]}); "
                    "the booted system backs up their metadata")
    texts = {}
    for conf in ("/etc/lvm/lvm.conf", "/etc/lvm/lvmlocal.conf"):
        try:
            texts[conf] = inv.fs.read_bytes(conf).decode("utf-8", "surrogateescape")
        except OSError:
            pass  # lvm uses its defaults without the file
    known: dict[str, str] = {}
    for text in texts.values():
        known.update(lvm_documented(text))
    for conf, text in texts.items():
        settings = lvm_settings(text)
        if settings is None:
            raise Defer(f"vgcfgbackup: {conf} is not a configuration the model parses (lvm's parse error)")
        for name, kind in settings:
            # lvm warns about an unknown setting or one of the wrong kind: warnings the model
            # does not reproduce, so only the settings the shipped files document are answered
            # (one quoted string where a list is documented is a list of one: lvm takes it)
            if known.get(name) != kind and not (known.get(name) == "list" and kind == "string"):
                raise Defer(f"vgcfgbackup: {conf} sets {name}, which the image's lvm.conf does not "
                            f"document as a {kind} (lvm's warning is not reproduced)")
    inv.err(_LVM_NO_PROC)
    return 4


# ---- postgresql-common: pg_checksystem, run-upgrade-scripts ----------------------------------

#: where a Debian perl finds PgCommon.pm (postgresql-client-common installs it in perl5)
_PERL_INC = ("/etc/perl", "/usr/local/lib/x86_64-linux-gnu/perl/5.36.0", "/usr/local/share/perl/5.36.0",
             "/usr/lib/x86_64-linux-gnu/perl5/5.36", "/usr/share/perl5")


def _pg_prerequisites(inv: Invocation) -> str:
    """The cluster configuration root PgCommon uses; defers where the Perl program would not
    get as far as its own logic (no perl, no PgCommon) — those failures are left to the boot."""
    prog = inv.name
    try:
        inv.fs.stat("/usr/bin/perl")
    except OSError:
        raise Defer(f"{prog}: the image has no /usr/bin/perl to run it") from None
    for d in _PERL_INC:
        try:
            inv.fs.stat(d + "/PgCommon.pm")
            break
        except OSError:
            continue
    else:
        raise Defer(f"{prog}: PgCommon.pm (postgresql-client-common) is not installed")
    # PgCommon.pm: $confroot = $ENV{PG_CLUSTER_CONF_ROOT} || '/etc/postgresql'
    return inv.env.get("PG_CLUSTER_CONF_ROOT") or "/etc/postgresql"


def _pg_clusters(inv: Invocation, confroot: str) -> list[str]:
    """``V/C`` for every ``CONFROOT/V/C/postgresql.conf`` that exists or is a dangling link.

    PgCommon's ``get_version_clusters`` counts exactly those under each version it knows (from
    ``/usr/lib/postgresql/V/bin`` and from configured versions); every entry is taken here,
    which can only over-count, so "no cluster" is never answered for an image that has one.
    """
    found = []
    try:
        versions = sorted(inv.fs.listdir(confroot))
    except OSError:
        return []
    for v in versions:
        try:
            names = sorted(inv.fs.listdir(f"{confroot}/{v}"))
        except OSError:
            continue
        for c in names:
            try:
                inv.fs.lstat(f"{confroot}/{v}/{c}/postgresql.conf")
                found.append(f"{v}/{c}")
            except OSError:
                pass
    return found


def pg_checksystem(inv: Invocation) -> int:
    """``/usr/share/postgresql-common/pg_checksystem`` (postgresql-common 248): warn about drives
    with a write cache that hold a cluster's data directory.

    With no cluster it checks nothing, prints nothing and exits 0; run as another user than root
    it dies with "Error: This command needs to be executed as root". A cluster's drive is asked
    for its write cache with the HDIO_GET_WCACHE ioctl, a question for the booted machine's
    disk: that case is deferred.
    """
    confroot = _pg_prerequisites(inv)
    creds = getattr(inv.fs, "creds", None)  # run by su/runuser as another user
    if creds is not None and creds.uid != 0:
        inv.err("Error: This command needs to be executed as root\n")
        return 1
    clusters = _pg_clusters(inv, confroot)
    if clusters:
        raise Defer(f"pg_checksystem: cluster {clusters[0]}: the write cache of its data directory's drive "
                    "(HDIO_GET_WCACHE) is a question for the booted machine")
    return 0


_PERL_NUM = re.compile(r"\d+(?:\.\d+)?")


def _perl_split(sep: str, s: str, limit: int) -> list[str]:
    """Perl's ``my (N scalars) = split /SEP/, s`` for a one-character separator: assigned to a
    list of N, split gets the implicit LIMIT N+1, so at most that many fields and trailing empty
    fields are kept (``12_six_`` has the scope ""); an empty string splits into no field."""
    return s.split(sep, limit - 1) if s else []


def run_upgrade_scripts(inv: Invocation) -> int:
    """``/usr/share/postgresql-common/run-upgrade-scripts OLD`` (postgresql-common 248).

    It runs the scripts of ``upgrade-scripts/`` (beside itself) named ``VERSION_NAME_SCOPE[.sql]``
    that apply to an upgrade from OLD against every database of every cluster. Which apply, and
    the "Executing upgrade script NAME..." lines, are reproduced when there is no cluster (the
    loop over clusters is then empty); applying one to a cluster needs the cluster's server
    running (psql) and is deferred, as is a version comparison Perl would warn about (a
    non-numeric OLD or VERSION). Debian 12 ships no upgrade script (only ``SPECIFICATION``).
    """
    confroot = _pg_prerequisites(inv)
    creds = getattr(inv.fs, "creds", None)  # run by su/runuser as another user
    if creds is not None and creds.uid != 0:
        # Perl's -x would then follow the user's permission bits; judged as root only
        raise Defer("run-upgrade-scripts as a user other than root")
    argv0 = inv.argv[0]
    if len(inv.argv) != 2:
        inv.err(f"Error: Usage: {argv0} <version upgraded from>\n")
        return 1
    old = inv.argv[1]
    f = argv0.split("/")[:-1] or ["."]  # the script's own directory, as `split /\//, $0` gives it
    scriptpath = "/".join([*f, "upgrade-scripts"])
    try:
        entries = inv.fs.listdir(inv.path(scriptpath))
    except OSError:
        inv.err(f"Error: Could not open script path '{scriptpath}'\n")
        return 1
    # Perl's `sort readdir`: byte order, with . and .. (which split into no fields: skipped)
    names = sorted([".", "..", *entries], key=lambda n: n.encode("utf-8", "surrogateescape"))
    for script in names:
        parts = _perl_split(".", script, 3)
        fname, ext = (parts + [None, None])[:2]
        fields = _perl_split("_", fname or "", 4)
        version, name, scope = (fields + [None, None, None])[:3]
        is_sql = ext == "sql"
        if scope is None:
            continue
        if not is_sql:
            try:
                st = inv.fs.stat(inv.path(f"{scriptpath}/{script}"))
            except OSError:
                continue
            # perl's -x for root: a directory, or any execute bit
            if not (stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111):
                continue
        if version != "all":
            if not (_PERL_NUM.fullmatch(old) and _PERL_NUM.fullmatch(version)):
                raise Defer(f"run-upgrade-scripts: {old} <= {version} is a Perl numeric comparison of a "
                            "non-number (a warning the model does not reproduce)")
            if not float(old) <= float(version):
                continue
        clusters = _pg_clusters(inv, confroot)
        if clusters:
            raise Defer(f"run-upgrade-scripts: upgrade script {script} applies to cluster {clusters[0]}, "
                        "whose server must run (psql)")
        inv.out(f"Executing upgrade script {name}...\n")
    return 0
