"""``dpkg`` (1.21.22) as maintainer scripts call it: the enquiry actions, simulated exactly.

Modelled (``src/main/enquiry.c``, ``main.c``): ``--compare-versions`` with every relation
(including the obsolete ``<``/``>``, which warn, and the ``-nl`` forms where an empty version
is the highest), ``--print-architecture``, ``--print-foreign-architectures``,
``--assert-<feature>`` (answered against ``DPKG_RUNNING_VERSION`` like dpkg does),
``--validate-{pkgname,trigname,archname,version}``, and the actions dpkg hands to dpkg-query
(``-s``, ``-p``, ``-L``, ``-l``, ``-S``), run through the dpkg-query model exactly as dpkg's
``execbackend`` runs the real one.

Everything that installs, removes, configures or otherwise changes packages from inside a
maintainer script (``-i``, ``-r``, ``--configure``, ``--set-selections``...) is deferred:
dpkg holds its lock while it runs the script, so these only make sense at first boot.
The native architecture is the image's own (the architecture of its ``dpkg`` package); the
foreign ones come from ``ADMINDIR/arch`` as in ``dpkg_arch_load_list``.
"""

from __future__ import annotations

from nuwa.deb.status import DATABASE_FILE_MAX, UPDATESDIR, StatusFile, journal_names
from nuwa.deb.version import dpkg_parseversion, version_compare
from nuwa.errors import CorruptImageError
from nuwa.script.commands._memo import ContentMemo
from nuwa.script.commands.dpkg.common import (
    DpkgExit, Opt, Tool, arch_name_is_illegal, pkg_name_is_illegal, trig_name_is_illegal,
)
from nuwa.script.commands.dpkg.query import native_arch, query_main
from nuwa.script.context import Defer, Invocation

HINT = ("Type dpkg --help for help about installing and deinstalling packages [*];\n"
        "Use 'apt' or 'aptitude' for user-friendly package management;\n"
        "Type dpkg -Dhelp for a list of dpkg debug flag values;\n"
        "Type dpkg --force-help for a list of forcing options;\n"
        "Type dpkg-deb --help for help about manipulating *.deb files;\n\n"
        "Options marked [*] produce a lot of output - pipe it through 'less' or 'more' !")

_ACTIONS = [
    ("install", "i"), ("unpack", None), ("record-avail", "A"), ("configure", None), ("remove", "r"),
    ("purge", "P"), ("triggers-only", None), ("verify", "V"), ("listfiles", "L"), ("status", "s"),
    ("get-selections", None), ("set-selections", None), ("clear-selections", None), ("print-avail", "p"),
    ("update-avail", None), ("merge-avail", None), ("clear-avail", None), ("forget-old-unavail", None),
    ("audit", "C"), ("yet-to-unpack", None), ("list", "l"), ("search", "S"), ("assert", None),
    ("add-architecture", None), ("remove-architecture", None), ("print-architecture", None),
    ("print-foreign-architectures", None), ("predep-package", None), ("validate-pkgname", None),
    ("validate-trigname", None), ("validate-archname", None), ("validate-version", None),
    ("compare-versions", None), ("help", "?"), ("version", None),
]
_BACKEND = [("build", "b"), ("contents", "c"), ("control", "e"), ("info", "I"), ("field", "f"),
            ("extract", "x"), ("vextract", "X"), ("ctrl-tarfile", None), ("fsys-tarfile", None)]
_VALUED = ["pre-invoke", "post-invoke", "path-exclude", "path-include", "verify-format", "status-logger",
           "status-fd", "log", "root", "abort-after", "admindir", "instdir", "ignore-depends"]
_FLAGS = [("pending", "a"), ("recursive", "R"), ("no-act", None), ("dry-run", None), ("simulate", None),
          ("no-pager", None), ("no-debsig", None), (None, "G"), ("selected-only", "O"), ("triggers", None),
          ("no-triggers", None), ("no-also-select", "N"), ("skip-same-version", "E"),
          ("auto-deconfigure", "B"), ("robot", None)]

OPTS: list[Opt] = (
    [Opt(n, s, 2 if n == "assert" else 0, n, True) for n, s in _ACTIONS]
    + [Opt(n, None, 1, n) for n in _VALUED]
    + [Opt(n, s, 0, n or "refuse-downgrade") for n, s in _FLAGS]
    + [Opt("force", None, 2, "force"), Opt("refuse", None, 2, "refuse"), Opt("no-force", None, 2, "no-force"),
       Opt("debug", "D", 1, "debug")]
    + [Opt(n, s, 0, n, True) for n, s in _BACKEND]
)

#: name -> (description, version) of ``--assert-<feature>``
FEATURES = {
    "support-predepends": ("the Pre-Depends field", "1.1.0"),
    "working-epoch": ("epochs in versions", "1.4.0.7"),
    "long-filenames": ("long filenames in .deb archives", "1.4.1.17"),
    "multi-conrep": ("multiple Conflicts and Replaces", "1.4.1.19"),
    "multi-arch": ("multi-arch fields and semantics", "1.16.2"),
    "versioned-provides": ("versioned relationships in the Provides field", "1.17.11"),
    "protected-field": ("the Protected field", "1.20.1"),
}

#: relation -> exit status if (lesser, equal, greater, none_a, none_both, none_b); obsolete?
RELATIONS = {
    "le": ((0, 0, 1, 0, 0, 1), False), "lt": ((0, 1, 1, 0, 1, 1), False), "eq": ((1, 0, 1, 1, 0, 1), False),
    "ne": ((0, 1, 0, 0, 1, 0), False), "ge": ((1, 0, 0, 1, 0, 0), False), "gt": ((1, 1, 0, 1, 1, 0), False),
    "le-nl": ((0, 0, 1, 1, 0, 0), False), "lt-nl": ((0, 1, 1, 1, 1, 0), False),
    "ge-nl": ((1, 0, 0, 0, 0, 1), False), "gt-nl": ((1, 1, 0, 0, 1, 1), False),
    "<": ((0, 0, 1, 0, 0, 1), True), "<=": ((0, 0, 1, 0, 0, 1), False), "<<": ((0, 1, 1, 0, 1, 1), False),
    "=": ((1, 0, 1, 1, 0, 1), False), ">": ((1, 0, 0, 1, 0, 0), True), ">=": ((1, 0, 0, 1, 0, 0), False),
    ">>": ((1, 1, 0, 1, 1, 0), False),
}

_QUERY_ACTIONS = {"listfiles", "status", "print-avail", "list", "search"}


def compare_versions(tool: Tool, args: list[str]) -> int:
    """``cmpversions``: the exit status of ``dpkg --compare-versions A REL B``."""
    if len(args) != 3:
        tool.badusage("--compare-versions takes three arguments: <version> <relation> <version>")
    a, rel, b = args
    if rel not in RELATIONS:
        tool.badusage("--compare-versions bad relation")
    codes, obsolete = RELATIONS[rel]
    if obsolete:
        tool.warning(f"--compare-versions used with obsolete relation operator '{rel}'")
    va = _version_arg(tool, a)
    vb = _version_arg(tool, b)
    if va is None:
        return codes[3] if vb is not None else codes[4]
    if vb is None:
        return codes[5]
    r = version_compare(va, vb)
    return codes[2] if r > 0 else codes[0] if r < 0 else codes[1]


def _version_arg(tool: Tool, text: str):
    """One operand: blank for "" or ``<unknown>``; a bad one warns or is an error."""
    if text == "" or text == "<unknown>":
        return None
    v, level, msg = dpkg_parseversion(text)
    if level == "error":
        tool.error(f"version '{text}' has bad syntax: {msg}")
    if level == "warning":
        tool.warning(f"version '{text}' has bad syntax: {msg}")
    # dpkg_version_is_informative: a version whose parts are all empty counts as blank
    if v is not None and not v.epoch and not v.upstream and not v.revision:
        return None
    return v


def _one_arg(tool: Tool, args: list[str], what: str) -> str:
    if len(args) != 1:
        tool.badusage(f"--{tool.action.long} takes one <{what}> argument")
    return args[0]


def _status(tool: Tool) -> StatusFile:
    try:
        return StatusFile.load(tool.fs, tool.image_admindir() + "/status")
    except CorruptImageError as e:
        raise Defer(f"dpkg: the package database cannot be read ({e})") from None


#: the architecture of the database's ``dpkg`` entry (None: no entry, or ``all``), by the
#: bytes the database is read from: a kernel update asks ``dpkg --print-architecture``
#: several times of an unchanged database (linux-update-symlinks, mkinitramfs twice), and
#: parsing the status file is the whole cost of the answer
_DPKG_ARCH: ContentMemo[str | None] = ContentMemo(size=2)


def _database(fs, admindir: str) -> tuple | None:
    """What ``StatusFile.load`` reads (the status file, then each journal record in order),
    or None when that is not plainly readable (the slow path then reports it)."""
    try:
        path = admindir + "/status"
        try:
            if fs.stat(path).st_size > DATABASE_FILE_MAX:
                return None
            status = fs.read_bytes(path)
        except FileNotFoundError:
            status = b""
        updates = admindir + "/" + UPDATESDIR
        return (admindir, status, *((n, fs.read_bytes(f"{updates}/{n}")) for n in journal_names(fs, updates)))
    except (OSError, CorruptImageError):
        return None


def _native_arch(tool: Tool) -> str:
    """``native_arch`` of the image's database, its status part memoised by the database's
    bytes (the fallback without a ``dpkg`` entry reads the image's files: not memoised)."""
    key = _database(tool.fs, tool.image_admindir())
    if key is not None:
        def entry_arch() -> str | None:
            e = _status(tool).find("dpkg")
            return e.arch if e is not None and e.arch and e.arch != "all" else None
        arch = _DPKG_ARCH(key, entry_arch)
        if arch is not None:
            return arch
    return native_arch(_status(tool), tool.fs)


def dpkg_main(inv: Invocation) -> int:
    """Run the ``dpkg`` model on ``inv.argv``."""
    tool = Tool(inv, "dpkg", HINT)

    def setter(o: Opt, v):
        if o.key in ("pre-invoke", "post-invoke", "status-logger", "status-fd", "debug"):
            raise Defer(f"dpkg --{o.long or o.short}: hooks and debugging are not modelled")

    rest = tool.parse(inv.argv[1:], OPTS, setter)
    if tool.action is None:
        tool.badusage("need an action option")
    act = tool.action.key
    if act in _QUERY_ACTIONS:
        # execbackend: dpkg-query --ACTION -- ARGS, with DPKG_ROOT/DPKG_ADMINDIR exported
        env = dict(inv.env)
        env["DPKG_ADMINDIR"] = tool.admindir
        env["DPKG_ROOT"] = tool.instdir
        sub = Invocation(argv=["dpkg-query"], fs=inv.fs, cwd=inv.cwd, env=env, stdin=inv.stdin,
                         umask=inv.umask, run=inv.run, state=inv.state, models=inv.models)
        st = query_main(sub, [f"--{act}", "--", *rest])
        inv.stdout += sub.stdout
        inv.stderr += sub.stderr
        return st
    if act == "compare-versions":
        return compare_versions(tool, rest)
    if act == "print-architecture":
        if rest:
            tool.badusage("--print-architecture takes no arguments")
        tool.out(_native_arch(tool) + "\n")
        return 0
    if act == "print-foreign-architectures":
        if rest:
            tool.badusage("--print-foreign-architectures takes no arguments")
        native = _native_arch(tool)
        try:
            text = inv.fs.read_bytes(tool.image_admindir() + "/arch").decode("utf-8", "surrogateescape")
        except FileNotFoundError:
            text = ""
        seen = [native, "all", "any"]
        for ln in text.split("\n"):
            a = ln.strip()
            if a and a not in seen and not arch_name_is_illegal(a):
                seen.append(a)
                tool.out(a + "\n")
        return 0
    if act == "assert":
        return assert_feature(tool, tool.action_value or "", rest)
    if act == "validate-pkgname":
        n = _one_arg(tool, rest, "pkgname")
        e = pkg_name_is_illegal(n)
        if e:
            tool.error(f"package name '{n}' is invalid: {e}")
        return 0
    if act == "validate-trigname":
        n = _one_arg(tool, rest, "trigname")
        e = trig_name_is_illegal(n)
        if e:
            tool.error(f"trigger name '{n}' is invalid: {e}")
        return 0
    if act == "validate-archname":
        n = _one_arg(tool, rest, "archname")
        e = arch_name_is_illegal(n)
        if e:
            tool.error(f"architecture name '{n}' is invalid: {e}")
        return 0
    if act == "validate-version":
        n = _one_arg(tool, rest, "version")
        _v, level, msg = dpkg_parseversion(n)
        if level == "error":
            tool.error(f"version '{n}' has bad syntax: {msg}")
        if level == "warning":
            tool.warning(f"version '{n}' has bad syntax: {msg}")
            return 1
        return 0
    raise Defer(f"dpkg --{act} changes or inspects packages beyond the enquiry actions (run at first boot)")


def assert_feature(tool: Tool, name: str, args: list[str]) -> int:
    """``--assert-<feature>``: succeed unless DPKG_RUNNING_VERSION is older than the feature."""
    if name == "help":
        tool.out("dpkg assert options - assert whether features are supported:\n")
        for n, (desc, ver) in FEATURES.items():
            tool.out(f"  {n:<19} {ver:<9} {desc}\n")
        raise DpkgExit(0)
    if name not in FEATURES:
        tool.badusage("unknown --assert-<feature>")
    desc, ver = FEATURES[name]
    if args:
        tool.badusage("--assert takes no arguments")
    running = tool.inv.env.get("DPKG_RUNNING_VERSION")
    if not running:
        return 0
    rv, level, msg = dpkg_parseversion(running)
    if rv is None or level:
        tool.error(f"cannot parse dpkg running version '{running}': {msg}")
    fv, _, _ = dpkg_parseversion(ver)
    if version_compare(rv, fv) >= 0:
        return 0
    tool.out(f"Running version of dpkg does not support {desc}.\n"
             f" Please upgrade to at least dpkg {ver}, and then try again.\n")
    return 1


def dpkg(inv: Invocation) -> int:
    """The ``dpkg`` model."""
    try:
        return dpkg_main(inv)
    except DpkgExit as e:
        return e.status
