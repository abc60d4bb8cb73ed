"""postgresql-common 248's cluster tools as maintainer scripts call them on a dormant image:
``pg_lsclusters``, ``pg_conftool`` (its read-only ``show``/``get`` forms) and ``pg_updatedicts``.

They are Perl programs over ``PgCommon.pm`` (``pgcommon.py``), so their answers come from the
image's files: ``/etc/postgresql/V/C/`` (the clusters), ``/etc/postgresql-common/``,
``/usr/lib/postgresql/V/`` (the server versions), ``/usr/share/postgresql/V/tsearch_data``.
A dormant image runs no server, so every cluster is "down", as the real program says in a
chroot of the image. Where the maintainer scripts meet them (postgresql-common 248 and
postgresql-15's scripts, ``maintscripts-functions``, ``pg_updateaptconfig``):

- ``pg_lsclusters -h | cut -d ' ' -f 1`` (the versions with clusters, for apt's
  NeverAutoRemove list) and ``pg_lsclusters -h | awk "/^15 /..."`` (a version's clusters);
- ``pg_conftool /etc/postgresql-common/createcluster.conf show -bs create_main_cluster`` and
  ``pg_conftool -s 15 main show data_directory``;
- ``pg_updatedicts`` (postinst on first install, and its dpkg trigger on hunspell/myspell and
  server packages): dictionaries converted to UTF-8 by ``iconv`` into
  ``/var/cache/postgresql/dicts`` and linked from each server version's ``tsearch_data``.

Deferred, with the reason: ``--json`` (JSON.pm prints Perl's hash order, random per run),
``pg_conftool set/remove/edit`` (no maintainer script writes a cluster's configuration) and
its default-cluster forms (``user_clusters``, ``~/.postgresqlrc``), a user other than root,
and the inputs on which Perl would print a warning. Getopt::Long's rules (abbreviations,
case, permutation; ``bundling`` for pg_conftool) are reproduced for these programs' flags.
Judged against the real programs in a chroot of a bookworm tree with postgresql-15 and a
hunspell dictionary installed (tests/script/test_pgtools.py).
"""

from __future__ import annotations

import re

from nuwa.script.commands.services.dormant import _pg_prerequisites
from nuwa.script.commands.services.pgcommon import (
    BINROOT, Pg, PgError, ascii_lower, bkey, config_bool, perl_dollar0, perl_records, quote_conf_value, truthy, which)
from nuwa.script.context import Defer, Invocation

A = re.ASCII


def _common(inv: Invocation, warnings: bool) -> Pg:
    """The checks every tool makes first: perl and PgCommon present, root, a plain Perl."""
    _pg_prerequisites(inv)
    creds = getattr(inv.fs, "creds", None)  # run by su/runuser as another user
    if creds is not None and creds.uid != 0:
        raise Defer(f"{inv.name} as a user other than root (Perl's file tests then follow permissions)")
    for var in ("PERL5OPT", "PERL5LIB", "PERLLIB", "POSIXLY_CORRECT", "PERL5DB"):
        if var in inv.env:
            raise Defer(f"{inv.name} with {var} set in the environment")
    if any("\n" in a for a in inv.argv):
        raise Defer(f"{inv.name}: an argument with a newline (Perl's $ matches before it)")
    return Pg(inv, warnings)


def getopt(inv: Invocation, names: dict[str, str], bundling: bool) -> tuple[set[str], list[str], str, bool]:
    """Getopt::Long 2.52's ``GetOptions`` for flags only: (options set, the other arguments in
    order, the warnings printed, ``--help`` reached). ``names`` maps each name and alias to its
    option. Long names are case-insensitive and may be abbreviated; without ``bundling`` a
    single dash takes a long name too; with it, ``-xyz`` is single letters (case-sensitive).
    The ``help`` option's handler runs as soon as it is met: the caller prints usage, exit 0.
    """
    found: set[str] = set()
    rest: list[str] = []
    warn = ""
    args = inv.argv[1:]
    i = 0
    while i < len(args):
        a = args[i]
        i += 1
        if a == "--":
            rest.extend(args[i:])
            break
        if a.startswith("+") and len(a) > 1 or a.startswith("---"):
            raise Defer(f"{inv.name}: option form {a!r} (Getopt::Long's '+' and '---' prefixes are not modelled)")
        if not a.startswith("-") or a == "-":
            rest.append(a)  # permute: the non-options stay in @ARGV, in order
            continue
        if bundling and not a.startswith("--"):
            if "=" in a:
                raise Defer(f"{inv.name}: bundled option {a!r} with '=' is not modelled")
            for ch in a[1:]:
                if ch in names and len(ch) == 1:
                    found.add(names[ch])
                else:
                    warn += f"Unknown option: {ch}\n"
            continue
        body = a[2:] if a.startswith("--") else a[1:]
        name, eq, _ = body.partition("=")
        low = ascii_lower(name)
        # an exact name first, else the unique prefix (bundling: of the long names only)
        hits = [n for n in names if n == low] or [n for n in names if n.startswith(low) and not (bundling and len(n) == 1)]
        if not low:
            raise Defer(f"{inv.name}: option {a!r} with an empty name is not modelled")
        if not hits:
            warn += f"Unknown option: {low}\n"
            continue
        if len({names[h] for h in hits}) > 1:
            raise Defer(f"{inv.name}: option {a} is ambiguous (Getopt::Long's message is not modelled)")
        hit = hits[0] if len(hits) == 1 else min(hits, key=len)
        if eq:
            warn += f"Option {hit} does not take an argument\n"
            continue
        if names[hit] == "help":
            return found, rest, warn, True
        found.add(names[hit])
    return found, rest, warn, False


# ---- pg_lsclusters ---------------------------------------------------------------------------

_LS_USAGE = """Usage: {0} [-hjs]

Options:
  -h --no-header   Omit column headers in output
  -j --json        JSON output
  -s --start-conf  Include start.conf information in status column
     --help        Print help
"""
_LS_NAMES = {"help": "help", "h": "no-header", "no-header": "no-header", "j": "json", "json": "json",
             "s": "start-conf", "start-conf": "start-conf"}
_JSON_PM = ("/etc/perl/JSON.pm", "/usr/share/perl5/JSON.pm", "/usr/lib/x86_64-linux-gnu/perl5/5.36/JSON.pm")


def pg_lsclusters(inv: Invocation) -> int:
    """``pg_lsclusters [-h] [-s] [-j] [VERSION [CLUSTER] | VERSION/CLUSTER]``: one line per
    cluster (version, name, port, status, owner, data directory, log destination), columns
    padded to the widest value, after the header unless ``-h``. Every status is "down".
    """
    pg = _common(inv, warnings=True)  # #!/usr/bin/perl -wT
    opts, args, warn, helped = getopt(inv, _LS_NAMES, bundling=False)
    inv.err(warn)
    if helped or warn:
        inv.out(_LS_USAGE.format(perl_dollar0(inv)))
        return 0 if helped else 1
    try:
        lines = _ls_lines(inv, pg, opts, args)
        if "json" in opts:
            if not any(pg.e(p) for p in _JSON_PM):
                raise PgError("Please install JSON.pm for JSON output (Debian: libjson-perl)")
            raise Defer("pg_lsclusters --json: JSON.pm prints the keys in Perl's hash order, random per run")
    except PgError as e:
        inv.err(f"Error: {e}\n")
        return 1
    width = [1] * 7
    for line in lines:
        for k in range(6):  # the last column is not padded
            width[k] = max(width[k], len(bkey(line[k])))
    for line in lines:
        # printf "%-Ns" pads Perl's byte strings by their bytes
        cells = [c + " " * (w - len(bkey(c))) for c, w in zip(line, width)]
        inv.out(" ".join(cells) + "\n")
    return 0


def _ls_lines(inv: Invocation, pg: Pg, opts: set[str], args: list[str]) -> list[list[str]]:
    """pg_lsclusters' data collection: the header and one row per cluster."""
    ls_cluster = None
    m = re.fullmatch(r"(\d+(?:\.\d+)?)[-/]([-.\w]+)", args[0], A) if len(args) == 1 else None
    if m:
        versions, ls_cluster = [m.group(1)], m.group(2)
    elif args:
        if not re.fullmatch(r"\d+(?:\.\d+)?", args[0], A):
            raise PgError(f'Invalid version number "{args[0]}"')
        versions = [args[0]]
    else:
        versions = pg.get_versions()
    if len(args) >= 2 and re.fullmatch(r"[-.\w]+", args[1], A):
        ls_cluster = args[1]
    if truthy(ls_cluster) and not pg.cluster_exists(versions[0], ls_cluster):
        raise PgError(f"Cluster {' '.join(versions)} {ls_cluster} does not exist")
    lines = [] if "no-header" in opts else [["Ver", "Cluster", "Port", "Status", "Owner", "Data directory", "Log file"]]
    for v in versions:
        pg_log = "log" if float(v) >= 10 else "pg_log"  # the log directory in PGDATA since PG 10
        for c in [ls_cluster] if truthy(ls_cluster) else pg.get_version_clusters(v):
            info = pg.cluster_info(v, c)
            status = "down"  # no server runs on a dormant image
            if info.get("recovery"):
                status += ",recovery"
            if "start-conf" in opts:
                if info.get("start") is None:  # an empty postgresql.conf: cluster_info stopped early
                    inv.err('Use of uninitialized value $info{"start"} in concatenation (.) or string at '
                            f"{perl_dollar0(inv)} line 78.\n")
                status += "," + (info.get("start") or "")
            if not pg.e(f"{BINROOT}{v}/bin/postgres"):
                status += ",binaries_missing"
            conf = info["config"]
            logfile = info.get("logfile")
            logfile = "<unknown>" if logfile is None else logfile
            if config_bool(conf.get("logging_collector")):
                path = conf["log_directory"] if truthy(conf.get("log_directory")) else pg_log
                file = conf["log_filename"] if truthy(conf.get("log_filename")) else "postgresql-%Y-%m-%d_%H%M%S.log"
                logfile = f"{path}/{file}"
            dest = conf["log_destination"] if truthy(conf.get("log_destination")) else "stderr"
            dest = dest.replace("stderr", logfile, 1)
            csvlog = re.sub(r"(?:\.log)?$", ".csv", logfile, count=1)
            dest = dest.replace("csvlog", csvlog, 1)
            owner = pg.user_name(info["owneruid"]) if info.get("owneruid") is not None else "<unknown>"
            lines.append([v, c, info.get("port", "<unknown>"), status, owner,
                          info["pgdata"] if truthy(info["pgdata"]) else "<unknown>", dest])
    return lines


# ---- pg_conftool -----------------------------------------------------------------------------

_CONF_USAGE = """Usage:
  {0} [options] [<version> <cluster name>] [<configfile>] <command>

Options:
  -b --boolean  Format output as boolean
  -s --short    Print only value
  -v --verbose  Verbose output
  --help        This help

Commands:
  show <parameter>|all
  set <parameter> <value>
  remove <parameter>
  edit
"""
_CONF_NAMES = {"help": "help", "b": "boolean", "boolean": "boolean", "s": "short", "short": "short",
               "v": "verbose", "verbose": "verbose"}


def pg_conftool(inv: Invocation) -> int:
    """``pg_conftool [-bsv] [VERSION CLUSTER] [CONFIGFILE] show|get PARAMETER|all``: a setting
    of a cluster's configuration file (or of an absolute file), as PgCommon reads it.

    Without VERSION CLUSTER the default cluster is PgCommon's ``user_cluster_map`` (root's
    ``~/.postgresqlrc``, ``user_clusters``, the only cluster or the one on port 5432).
    ``set``, ``remove`` and ``edit`` are deferred; their argument checks are answered first.
    """
    pg = _common(inv, warnings=False)  # `use warnings` is lexical: PgCommon.pm's code does not warn
    opts, args, warn, helped = getopt(inv, _CONF_NAMES, bundling=True)
    inv.err(warn)
    usage = _CONF_USAGE.format(perl_dollar0(inv))

    def help_(status: int, error: str = "") -> int:
        if error:
            inv.err(f"Error: {error}\n")
        inv.out(usage)
        return status

    if helped or warn:
        return help_(0 if helped else 1)
    cmdidx = next((i for i, a in enumerate(args)
                   if re.fullmatch(r"(?:show|get|set|remove|delete|disable|edit)\n?", a, A)), None)
    if cmdidx is None:
        return help_(1, "No command given")
    if cmdidx > 3:
        return help_(1, "Too many arguments before command")
    version = cluster = None
    try:
        if cmdidx == 0 or (cmdidx == 1 and not args[0].startswith("/")):
            # postgresql.conf, or a relative file, of the default cluster
            version, cluster = pg.user_cluster_map()
            if not truthy(cluster):
                raise PgError("No default cluster found")
        if cmdidx == 0:
            conffile = "postgresql.conf"
        elif cmdidx == 1:
            conffile = args[0]
        else:
            version, cluster = args[0], args[1]
            conffile = args[2] if cmdidx == 3 else "postgresql.conf"
        if truthy(cluster) and not pg.cluster_exists(version, cluster):
            raise PgError(f"Cluster {version} {cluster} does not exist")
        rest = args[cmdidx:]
        cmd = "show" if rest[0] == "get" else "remove" if re.search(r"delete|disable", rest[0]) else rest[0]
        need = {"edit": 1, "show": 2, "remove": 2}.get(cmd, 3)
        if len(rest) != need:
            what = {1: "takes no argument", 2: "needs exactly one argument", 3: "needs exactly two arguments"}[need]
            return help_(1, f"{cmd} {what}")
        if cmd != "show":
            raise Defer(f"pg_conftool {cmd}: only the read-only show/get forms are modelled "
                        "(no maintainer script changes a cluster's configuration)")
        key = rest[1]
        if conffile.startswith("/"):
            conf = pg.read_conf_file(conffile)
        else:
            conf = pg.read_cluster_conf_file(version, cluster, conffile)
    except PgError as e:
        inv.err(f"Error: {e}\n")
        return 1
    if key == "all":
        for k in sorted(conf, key=bkey):
            inv.out(f"{k} = {quote_conf_value(conf[k])}\n")
    elif key in conf:
        value = conf[key]
        if "boolean" in opts:
            value = "on" if config_bool(value) else "off"
        inv.out(f"{value}\n" if "short" in opts else f"{key} = {quote_conf_value(value)}\n")
    else:
        if "verbose" in opts:
            inv.out(f"# {key} not found in {conffile}\n")
        return 1
    return 0


# ---- pg_updatedicts --------------------------------------------------------------------------

_SRCDIRS = ("/usr/share/hunspell", "/usr/share/myspell/dicts")
_CACHEDIR = "/var/cache/postgresql/dicts"
_PGSHAREDIR = "/usr/share/postgresql/"


def perl_glob(inv: Invocation, pattern: str) -> list[str]:
    """Perl's ``glob`` (File::Glob's csh flags, ``bsd_glob.c``) for patterns whose only magic
    is ``*``: each magic component is matched against its directory's names (not the hidden
    ones), a plain one is taken as written (``a//b`` stays), and a result must exist
    (``lstat``). Sorted as GLOB_ALPHASORT does (``_alphasort``)."""
    if any(ch in pattern for ch in "?[{~\\"):
        raise Defer(f"{inv.name}: glob pattern {pattern} is not modelled")
    paths = [""]
    for k, comp in enumerate(pattern.split("/")):
        sep = "" if k == 0 else "/"
        if "*" not in comp:
            paths = [p + sep + comp for p in paths]
            continue
        rx = re.compile(".*".join(re.escape(x) for x in comp.split("*")), re.S)
        nxt = []
        for p in paths:
            try:
                names = inv.fs.listdir(p or "/")
            except (OSError, ValueError):
                continue
            nxt += [p + sep + n for n in names if not n.startswith(".") and rx.fullmatch(n)]
        paths = nxt
    out = []
    for p in paths:
        try:
            inv.fs.lstat(p)
            out.append(p)
        except (OSError, ValueError):
            pass
    return sorted(out, key=_alphasort)


def _alphasort(p: str) -> tuple:
    """bsd_glob.c ``ci_compare``: ASCII-folded ``char``s compared as the signed chars of amd64
    (a byte from 0x80 sorts before any ASCII one, and before the end of a shorter name: the
    terminating NUL is the 0 appended), ties broken by ``strcmp``."""
    folded = tuple(c - 256 if c >= 0x80 else c for c in bkey(p).lower())
    return folded + (0,), bkey(p)


def pg_updatedicts(inv: Invocation) -> int:
    """``pg_updatedicts`` (no options): each hunspell/myspell ``X.aff``/``X.dic`` pair is
    converted to UTF-8 (``iconv``, from the encoding its ``SET`` line names) into
    ``/var/cache/postgresql/dicts/x.affix``/``x.dict``, and symlinked from
    ``/usr/share/postgresql/V/tsearch_data`` of every version from 8.3; files and links of
    dictionaries that are gone are removed. ``mkdir`` and ``iconv`` run as the program's
    children through their own models; a deferral of either undoes everything it did.
    """
    pg = _common(inv, warnings=True)  # #!/usr/bin/perl -w
    if inv.run is None or not hasattr(inv.fs, "savepoint"):
        raise Defer("pg_updatedicts: no way to run its mkdir/iconv children atomically here")
    if inv.umask != 0o022:
        # the program sets umask 022 for itself and its children; ours inherit the script's
        raise Defer(f"pg_updatedicts under umask {inv.umask:04o} (its children would not get its umask 022)")
    sp = inv.fs.savepoint()
    try:
        st = _updatedicts(inv, pg)
    except Defer:
        inv.fs.rollback_to(sp)
        raise
    inv.fs.release(sp)
    return st


def _system(inv: Invocation, argv: list[str]) -> int:
    """Perl's ``system LIST``: the child's output goes where the program's goes."""
    if which(inv, argv[0]) is None:
        # perl's own "Can't exec" warning, not the shell's "not found"
        raise Defer(f"pg_updatedicts: {argv[0]} is not on PATH in the image")
    st, out, err = inv.run(argv, b"")
    inv.out(out)
    inv.err(err)
    return st


def _updatedicts(inv: Invocation, pg: Pg) -> int:
    if _system(inv, ["mkdir", "-p", _CACHEDIR]) != 0:
        return 1
    current: set[str] = set()
    versions = None
    inv.out("Building PostgreSQL dictionaries from installed myspell/hunspell packages...\n")
    for d in _SRCDIRS:
        for aff in perl_glob(inv, f"{d}/*.aff"):
            if pg.l(aff):
                continue
            dic = aff[:-3] + "dic"
            if not pg.f(dic):
                inv.err(f"ERROR: {aff} does not have corresponding {dic}, ignoring\n")
                continue
            data = pg.slurp(aff)
            if data is None:
                raise Defer(f"pg_updatedicts: {aff} cannot be opened (it dies with $!)")
            enc = next((m.group(1) for m in (re.fullmatch(r"SET ([\w-]+)\s*", line, A) for line in perl_records(data))
                        if m), None)
            if not truthy(enc):
                inv.err(f"ERROR: no encoding defined in {aff}, ignoring\n")
                continue
            locale = ascii_lower(aff.split("/")[-1][:-4])
            current |= {f"{_CACHEDIR}/{locale}.affix", f"{_CACHEDIR}/{locale}.dict"}
            inv.out(f"  {locale}\n")
            if _system(inv, ["iconv", "-f", enc, "-t", "UTF-8", "-o", f"{_CACHEDIR}/{locale}.affix", aff]) != 0:
                _unlink(inv, f"{_CACHEDIR}/{locale}.affix")
                inv.err(f"ERROR: Conversion of {aff} failed\n")
                continue
            if _system(inv, ["iconv", "-f", enc, "-t", "UTF-8", "-o", f"{_CACHEDIR}/{locale}.dict", dic]) != 0:
                _unlink(inv, f"{_CACHEDIR}/{locale}.affix")
                _unlink(inv, f"{_CACHEDIR}/{locale}.dict")
                inv.err(f"ERROR: Conversion of {dic} failed\n")
                continue
            versions = pg.get_versions() if versions is None else versions
            for v in versions:
                if float(v) < 8.3:
                    continue
                dest = f"{_PGSHAREDIR}/{v}/tsearch_data"
                if not pg.d(dest):
                    continue
                current |= {f"{dest}/{locale}.affix", f"{dest}/{locale}.dict"}
                if any(pg.e(f"{dest}/{locale}.{x}") and not pg.l(f"{dest}/{locale}.{x}") for x in ("affix", "dict")):
                    continue
                for x in ("affix", "dict"):
                    _unlink(inv, f"{dest}/{locale}.{x}")
                for x in ("affix", "dict"):
                    try:
                        inv.fs.symlink(f"{_CACHEDIR}/{locale}.{x}", f"{dest}/{locale}.{x}")
                    except OSError:
                        pass  # symlink's failure is not checked
    inv.out("Removing obsolete dictionary files:\n")
    for f in perl_glob(inv, f"{_CACHEDIR}/*"):
        if f not in current:
            inv.out(f"  {f}\n")
            _unlink(inv, f)
    for f in (perl_glob(inv, f"{_PGSHAREDIR}/*/tsearch_data/*.affix")
              + perl_glob(inv, f"{_PGSHAREDIR}/*/tsearch_data/*.dict")):
        if pg.l(f) and f not in current:
            inv.out(f"  {f}\n")
            _unlink(inv, f)
    return 0


def _unlink(inv: Invocation, p: str) -> None:
    """Perl's ``unlink``: a directory or a missing file is left, silently."""
    try:
        if not inv.fs.lstat(p).is_dir:
            inv.fs.unlink(p)
    except OSError:
        pass
