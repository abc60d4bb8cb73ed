"""postgresql-common's cluster tools (pg_lsclusters, pg_conftool, pg_updatedicts) judged against
the real programs in a chroot of a bookworm tree with postgresql-15 (whose postinst created the
cluster 15/main) and hunspell-en-us (whose dictionary pg_updatedicts linked).

Each case takes two hard-linked copies of the tree, makes the same change to both (files it
changes are unlinked from the cache first), runs the real command as ``sh -c`` in a chroot of
one (in an empty network namespace: nothing listens, as on a dormant image) and the simulator
on the other, then compares status, stdout, stderr and the files below the paths involved.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from debian_tree import bookworm_tree, link_tree, upper_layer
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.interp import run_script

PACKAGES = ("postgresql-15", "postgresql-common", "hunspell-en-us", "libjson-perl")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MODELS = default_models()
#: what the tools read or write: the copies own these files (no hard link into the cache)
OWNED = ("etc/postgresql", "etc/postgresql-common", "etc/apt/apt.conf.d", "var/cache/postgresql",
         "usr/share/postgresql/15/tsearch_data", "usr/share/hunspell", "var/lib/postgresql")
COMPARED = ("etc/postgresql", "etc/apt/apt.conf.d", "var/cache/postgresql", "usr/share/postgresql",
            "usr/share/hunspell", "usr/share/myspell", "tmp")


@pytest.fixture(scope="module")
def tree() -> str:
    tool("unshare")
    tool("chroot")
    return bookworm_tree(extra=PACKAGES)


def _own(root: str) -> None:
    """Break the hard links of the files a case may change, so the cached tree stays as it is
    (an overlay copy has none: what is written there goes to its upper layer, never to the
    cache, and copying the files up here would cost seconds a case)."""
    if upper_layer(root) is not None:
        return
    for rel in OWNED:
        for dirpath, _, files in os.walk(os.path.join(root, rel)):
            for n in files:
                p = os.path.join(dirpath, n)
                if os.path.islink(p):
                    continue
                tmp = p + ".own"
                shutil.copy2(p, tmp)
                st = os.lstat(p)
                os.chown(tmp, st.st_uid, st.st_gid)
                os.rename(tmp, p)


def pair(tree: str, tmp_path, setup=None) -> tuple[str, str]:
    """Two owned copies of the tree ("real", "model"), each changed by ``setup(root)``."""
    roots = []
    for side in ("real", "model"):
        root = link_tree(tree, str(tmp_path / side))
        _own(root)
        if setup:
            setup(root)
        roots.append(root)
    return roots[0], roots[1]


def real(root: str, cmd: str) -> tuple[int, bytes, bytes]:
    p = subprocess.run(["unshare", "-n", "chroot", root, "/usr/bin/env", "-i", "LC_ALL=C", f"PATH={PATH}",
                        "/bin/sh", "-c", cmd], capture_output=True, timeout=300)
    if b"unshare failed" in p.stderr:
        pytest.skip(p.stderr.decode().strip())
    return p.returncode, p.stdout, p.stderr


def model(root: str, cmd: str) -> tuple[int, bytes, bytes, list[str]]:
    """The simulator's (status, stdout, stderr, deferral reasons); its changes are written."""
    fs = Overlay(HostDirFS(root, writable=True))
    r = run_script(fs, cmd + "\n", env={"LC_ALL": "C", "PATH": PATH}, models=MODELS, is_path=False)
    reasons = ([r.reason] if r.deferred_whole else []) + [d.reason for d in r.deferred_commands]
    if not reasons:
        fs.commit()
    return r.status, r.stdout, r.stderr, reasons


def facts(root: str) -> dict[str, tuple]:
    out = {}
    for rel in COMPARED:
        for dirpath, dirs, files in os.walk(os.path.join(root, rel)):
            for n in dirs + files:
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                if stat.S_ISLNK(st.st_mode):
                    what = os.readlink(p)
                elif stat.S_ISREG(st.st_mode):
                    with open(p, "rb") as f:
                        what = f.read()
                else:
                    what = None
                out[os.path.relpath(p, root)] = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, what)
    return out


def judge(tree: str, tmp_path, cmd: str, setup=None) -> tuple[int, bytes, bytes]:
    """Run ``cmd`` both ways; everything observable must agree. Returns the real result."""
    r, m = pair(tree, tmp_path, setup)
    want = real(r, cmd)
    st, out, err, reasons = model(m, cmd)
    assert not reasons, reasons
    assert (st, out, err) == want
    assert facts(m) == facts(r)
    return want


_COPIES: dict[str, str] = {}


def described(tree: str, tmp_path_factory, setups: tuple) -> str:
    """One owned copy per combination of setups, shared by the read-only cases of a worker."""
    key = "+".join(f.__name__ for f in setups) or "installed"
    if key not in _COPIES:
        root = link_tree(tree, str(tmp_path_factory.mktemp("pg") / key))
        _own(root)
        for f in setups:
            f(root)
        _COPIES[key] = root
    return _COPIES[key]


def judge_read_only(tree: str, tmp_path_factory, cmd: str, *setups) -> tuple[int, bytes, bytes]:
    """A command that changes nothing, run both ways on one copy: outputs agree, no change."""
    root = described(tree, tmp_path_factory, setups)
    want = real(root, cmd)
    fs = Overlay(HostDirFS(root))
    r = run_script(fs, cmd + "\n", env={"LC_ALL": "C", "PATH": PATH}, models=MODELS, is_path=False)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, [d.reason for d in r.deferred_commands])
    assert (r.status, r.stdout, r.stderr) == want
    assert not fs.changes()
    return want


def deferred(tree: str, tmp_path, cmd: str, setup=None) -> str:
    """The reason the simulator defers ``cmd``; the model's copy must be left unchanged."""
    _, m = pair(tree, tmp_path, setup)
    before = facts(m)
    _, _, _, reasons = model(m, cmd)
    assert reasons
    assert facts(m) == before
    return reasons[0]


# ---- clusters described in the copies ------------------------------------------------------------

def _write(root: str, rel: str, text: str, mode: int = 0o644) -> None:
    p = os.path.join(root, rel)
    # never through the tree's absolute links (var/run -> /run) onto the host
    assert os.path.realpath(os.path.dirname(p)).startswith(os.path.realpath(root) + "/"), p
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "w") as f:
        f.write(text)
    os.chmod(p, mode)


def _uid(root: str, name: str) -> int:
    with open(os.path.join(root, "etc/passwd")) as f:
        return next(int(line.split(":")[2]) for line in f if line.startswith(name + ":"))


def no_cluster(root: str) -> None:
    shutil.rmtree(os.path.join(root, "etc/postgresql/15/main"))


def second(root: str) -> None:
    """A second cluster described by hand: its own port, logging collector, csv log, start.conf
    "manual", a standby signal, a pid file whose process is gone."""
    d = os.path.join(root, "var/lib/postgresql/15/second")
    os.makedirs(d)
    os.chown(d, _uid(root, "postgres"), 0)
    open(os.path.join(d, "standby.signal"), "w").close()
    _write(root, "etc/postgresql/15/second/postgresql.conf",
           "# second\ndata_directory = '/var/lib/postgresql/15/second'\nport = 5433  # its own\n"
           "logging_collector = On\nlog_destination = 'stderr,csvlog'\nlog_directory = '/var/log/pg'\n"
           "external_pid_file = '/var/run/postgresql/15-second.pid'\nCLUSTER_NAME = 'it''s \\'2\\''\n")
    _write(root, "etc/postgresql/15/second/start.conf", "# comment\n  manual # why\n")
    _write(root, "run/postgresql/15-second.pid", "4242\n")  # var/run is a link to /run


def old_version(root: str) -> None:
    """A cluster of a version whose server is not installed, its port in an included file, its
    log file a link, its data directory owned by root."""
    os.makedirs(os.path.join(root, "srv/pg13"))
    _write(root, "etc/postgresql/13/old/postgresql.conf",
           "data_directory '/srv/pg13'\ninclude_dir = 'conf.d'\ninclude_if_exists 'missing.conf'\n")
    _write(root, "etc/postgresql/13/old/conf.d/port.conf", "port = 5440\n")
    _write(root, "etc/postgresql/13/old/conf.d/.hidden.conf", "port = 1\n")
    _write(root, "etc/postgresql/13/old/conf.d/x.txt", "port = 2\n")
    os.symlink("/var/log/pg13.log", os.path.join(root, "etc/postgresql/13/old/log"))


def bad_line(root: str) -> None:
    with open(os.path.join(root, "etc/postgresql/15/main/postgresql.conf"), "a") as f:
        f.write("this is = not valid'\n")


def inaccessible(root: str) -> None:
    _write(root, "etc/postgresql/15/gone/postgresql.conf", "data_directory = '/nowhere/15/gone/'\n")


def no_socket_dir(root: str) -> None:
    """The default socket directory, which a dormant image's /run does not hold."""
    p = os.path.join(root, "etc/postgresql/15/main/postgresql.conf")
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace("\nunix_socket_directories", "\n#unix_socket_directories"))


def no_data_directory(root: str) -> None:
    """Clusters with settings but no data directory: PgCommon reads the configuration again at
    each step and warns each time (perl -w) before its answer or its error."""
    _write(root, "etc/postgresql/15/nodata/postgresql.conf", "port = 5433\nunix_socket_directories = '/tmp,/x'\n")
    _write(root, "etc/postgresql/16/nodata/postgresql.conf", "port = 5434\n")


def empty_conf(root: str) -> None:
    _write(root, "etc/postgresql/15/bare/postgresql.conf", "# nothing\n")


# ---- pg_lsclusters --------------------------------------------------------------------------------

LS_ARGS = ["", "-h", "--no-header", "-H", "-s", "-h -s", "-S --no-h", "15", "15 main", "15/main", "15-main",
           "15 nope", "14", "abc", "15 '%%'", "15 0", "15 main extra", "-x -q", "-hj", "--help", "-x --help",
           "--he=1 --no=2", "-- -h", "-Q --FOO-Bar", "-no-header 15 main"]


@pytest.mark.judge
@pytest.mark.parametrize("args", LS_ARGS)
def test_pg_lsclusters_on_the_installed_cluster(tree, tmp_path_factory, args):
    judge_read_only(tree, tmp_path_factory, f"pg_lsclusters {args}")


@pytest.mark.judge
@pytest.mark.parametrize("setup", [no_cluster, second, old_version, bad_line, inaccessible, no_socket_dir, empty_conf,
                                   no_data_directory])
@pytest.mark.parametrize("args", ["", "-h", "-s -h"])
def test_pg_lsclusters_on_described_clusters(tree, tmp_path_factory, setup, args):
    judge_read_only(tree, tmp_path_factory, f"pg_lsclusters {args}", setup)


@pytest.mark.judge
def test_pg_lsclusters_empty_configuration_warns_as_perl_does(tree, tmp_path_factory):
    want = judge_read_only(tree, tmp_path_factory, "pg_lsclusters -s", empty_conf)
    assert want[2].count(b"Use of uninitialized value") == 2


@pytest.mark.judge
def test_pg_lsclusters_without_a_data_directory_warns_at_each_read(tree, tmp_path_factory):
    st, out, err = judge_read_only(tree, tmp_path_factory, "pg_lsclusters 15", no_data_directory)
    assert st == 0 and err.count(b"Use of uninitialized value") == 3
    st, out, err = judge_read_only(tree, tmp_path_factory, "pg_lsclusters 16", no_data_directory)
    assert st == 1 and err.endswith(b"Error: Cannot stat /var/run/postgresql\n")


@pytest.mark.judge
def test_pg_lsclusters_shows_the_described_clusters_down(tree, tmp_path_factory):
    want = judge_read_only(tree, tmp_path_factory, "pg_lsclusters -s", second, old_version)
    assert want[1].splitlines()[1:] == [
        b"13  old     5440 down,auto,binaries_missing root     /srv/pg13                     /var/log/pg13.log",
        b"15  main    5432 down,auto                  postgres /var/lib/postgresql/15/main   "
        b"/var/log/postgresql/postgresql-15-main.log",
        b"15  second  5433 down,recovery,manual       postgres /var/lib/postgresql/15/second "
        b"/var/log/pg/postgresql-%Y-%m-%d_%H%M%S.log,/var/log/pg/postgresql-%Y-%m-%d_%H%M%S.csv",
    ]


@pytest.mark.judge
def test_pg_lsclusters_json_is_deferred_for_its_hash_order(tree, tmp_path):
    assert "hash order" in deferred(tree, tmp_path, "pg_lsclusters --json")


# ---- pg_conftool ----------------------------------------------------------------------------------

CONF_ARGS = [
    "15 main show port", "-s 15 main show port", "15 main show -bs ssl", "-b 15 main show port",
    "15 main get data_directory", "-s 15 main show data_directory", "15 main show all", "15 main show Port",
    "-v 15 main show nothere", "15 main show nothere", "15 main pg_ctl.conf show all", "15 main start.conf show all",
    "15 main environment show all", "15 main postgresql.auto.conf show all", "15 main createcluster.conf show all",
    "/etc/postgresql-common/createcluster.conf show -bs create_main_cluster",
    "/etc/postgresql-common/createcluster.conf show all", "/nonexistent show x", "-v /nonexistent show x",
    "15 nope show port", "14 main show port", "15 main show", "15 main show a b", "15 main set port",
    "15 main edit x", "a b c d show x", "nothing here", "", "-x show", "-bx 15 main show ssl", "--help",
    "--bo=1 15 main show ssl", "--BOOL 15 main show ssl", "--sh 15 main show port", "-help", "15 main remove",
    "15 main delete a b", "--XyZ -Q show", "-boolean 15 main show ssl", "15 main show -- -s",
]


@pytest.mark.judge
@pytest.mark.parametrize("args", CONF_ARGS)
def test_pg_conftool_show_on_the_installed_cluster(tree, tmp_path_factory, args):
    judge_read_only(tree, tmp_path_factory, f"pg_conftool {args}")


@pytest.mark.judge
@pytest.mark.parametrize("args", ["15 bare show all", "15 bare postgresql.auto.conf show all", "15 second show all", "-s 15 second show cluster_name", "13 old show all",
                                  "-b 15 second show logging_collector", "13 old show port", "15 main show all"])
def test_pg_conftool_on_described_clusters(tree, tmp_path_factory, args):
    judge_read_only(tree, tmp_path_factory, f"pg_conftool {args}", second, old_version, bad_line, empty_conf)


@pytest.mark.judge
@pytest.mark.parametrize("args", ["15 main set port 5433", "15 main remove port", "15 main edit", "set port 1"])
def test_pg_conftool_writes_are_deferred(tree, tmp_path, args):
    assert "pg_conftool" in deferred(tree, tmp_path, f"pg_conftool {args}")


# ---- pg_updatedicts -----------------------------------------------------------------------------

def fresh_dicts(root: str) -> None:
    """As before postgresql-common's first configuration: no cache, no links."""
    shutil.rmtree(os.path.join(root, "var/cache/postgresql"))
    for n in ("en_us.affix", "en_us.dict"):
        os.unlink(os.path.join(root, "usr/share/postgresql/15/tsearch_data", n))


def _bytes(root: str, rel: str, data: bytes) -> None:
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    assert os.path.realpath(os.path.dirname(p)).startswith(os.path.realpath(root) + "/"), p
    with open(p, "wb") as f:
        f.write(data)


def more_dicts(root: str) -> None:
    """Dictionaries in ISO-8859-1 and UTF-8, one without its .dic, one without an encoding, one
    whose words are not valid UTF-8, a symlinked one; stale files and links; a regular file where
    a link would go; a tsearch_data directory of a version that is not installed."""
    _bytes(root, "usr/share/hunspell/de_AT.aff", b"SET ISO8859-1\nTRY esianrtolcdugmph\xe4\xf6\xfc\n")
    _bytes(root, "usr/share/hunspell/de_AT.dic", b"2\nStra\xdfe\n\xc4pfel\n")
    _bytes(root, "usr/share/hunspell/Xx_Nodic.aff", b"SET UTF-8\n")
    _bytes(root, "usr/share/hunspell/yy.aff", b"TRY abc\nSET  \n")
    _bytes(root, "usr/share/hunspell/yy.dic", b"1\nabc\n")
    _bytes(root, "usr/share/hunspell/ZZ_Test.aff", b"# test\nSET UTF-8   \n")
    _bytes(root, "usr/share/hunspell/ZZ_Test.dic", b"1\nab\xffcd\n")
    _bytes(root, "usr/share/hunspell/Zz_\u00c9a.aff", b"SET UTF-8\n")  # glob's order of a byte >= 0x80
    _bytes(root, "usr/share/hunspell/Zz_\u00c9a.dic", b"1\n\xc3\xa9t\xc3\xa9\n")
    _bytes(root, "usr/share/hunspell/zz_.aff", b"SET UTF-8\n")
    _bytes(root, "usr/share/hunspell/zz_.dic", b"1\nzz\n")
    _bytes(root, "usr/share/myspell/dicts/fr.aff", b"SET UTF-8\n")
    _bytes(root, "usr/share/myspell/dicts/fr.dic", b"1\nmot\n")
    os.symlink("/usr/share/hunspell/en_US.aff", os.path.join(root, "usr/share/myspell/dicts/en_GB.aff"))
    _bytes(root, "var/cache/postgresql/dicts/old.dict", b"stale\n")
    ts = "usr/share/postgresql/15/tsearch_data"
    os.symlink("/var/cache/postgresql/dicts/old.affix", os.path.join(root, ts, "old.affix"))
    _bytes(root, f"{ts}/fr.dict", b"a regular file: pg_updatedicts leaves fr alone here\n")
    os.makedirs(os.path.join(root, "usr/share/postgresql/13/tsearch_data"))
    os.symlink("/var/cache/postgresql/dicts/en_us.dict", os.path.join(root, "usr/share/postgresql/13/tsearch_data/en_us.dict"))


@pytest.mark.judge
@pytest.mark.parametrize("setup", [None, fresh_dicts, more_dicts, no_cluster])
def test_pg_updatedicts_matches_the_real_one(tree, tmp_path, setup):
    judge(tree, tmp_path, "pg_updatedicts", setup)


@pytest.mark.judge
def test_pg_updatedicts_converts_and_links_as_the_real_one(tree, tmp_path):
    st, out, err = judge(tree, tmp_path, "pg_updatedicts", lambda r: (fresh_dicts(r), more_dicts(r)))
    assert b"  de_at\n" in out and b"ERROR: Conversion of /usr/share/hunspell/ZZ_Test.dic failed\n" in err
    assert b"  /usr/share/postgresql//13/tsearch_data/en_us.dict\n" in out


@pytest.mark.judge
def test_pg_updatedicts_with_an_encoding_iconv_is_not_modelled_for_changes_nothing(tree, tmp_path):
    def koi8(root):
        fresh_dicts(root)
        _bytes(root, "usr/share/hunspell/ru_RU.aff", b"SET KOI8-R\n")
        _bytes(root, "usr/share/hunspell/ru_RU.dic", b"1\n\xc4\xc1\n")
    assert "iconv" in deferred(tree, tmp_path, "pg_updatedicts", koi8)


# ---- pg_updateaptconfig: the shell script the postinsts run, with pg_lsclusters modelled ---------

@pytest.mark.judge
@pytest.mark.parametrize("setup", [None, no_cluster, lambda r: (second(r), old_version(r))])
def test_pg_updateaptconfig_writes_what_the_real_one_writes(tree, tmp_path, setup):
    def stale(root):
        if setup:
            setup(root)
        _bytes(root, "etc/apt/apt.conf.d/02autoremove-postgresql", b"old\n")
    judge(tree, tmp_path, "/usr/share/postgresql-common/pg_updateaptconfig", stale)
    # and again, the file now current: cmp finds nothing to do
    (tmp_path / "again").mkdir()
    judge(tree, tmp_path / "again", "/usr/share/postgresql-common/pg_updateaptconfig", setup)


@pytest.mark.judge
def test_without_pgcommon_or_as_another_user_the_tools_are_deferred(tree, tmp_path, tmp_path_factory):
    def no_pgcommon(root):
        os.unlink(os.path.join(root, "usr/share/perl5/PgCommon.pm"))
    for cmd in ("pg_lsclusters", "pg_conftool 15 main show port", "pg_updatedicts"):
        d = tmp_path / cmd.split()[0]
        d.mkdir()
        assert "PgCommon.pm" in deferred(tree, d, cmd, no_pgcommon)
    fs = Overlay(HostDirFS(described(tree, tmp_path_factory, ())))
    r = run_script(fs, "su -s /bin/sh nobody -c pg_lsclusters\n", env={"LC_ALL": "C", "PATH": PATH},
                   models=MODELS, is_path=False)
    reasons = ([r.reason] if r.deferred_whole else []) + [d.reason for d in r.deferred_commands]
    assert reasons and "other than root" in reasons[0], reasons


# ---- pg_conftool on the default cluster (PgCommon's user_cluster_map) -------------------------------

def user_clusters(root: str) -> None:
    _write(root, "etc/postgresql-common/user_clusters",
           "# user group version cluster database\nroot root 14 main db\nbad line\n* * 15 nope *\n"
           "postgres * 15 main *\n  * *   15 second * # this one\n* * 15 main *\n")


def postgresqlrc(root: str) -> None:
    _write(root, "root/.postgresqlrc", "# mine\n15\n15 main\n13 old db\n\n15 second mydb\n")


@pytest.mark.judge
@pytest.mark.parametrize("setups", [(), (no_cluster,), (second,), (second, old_version), (old_version,),
                                    (second, user_clusters), (second, old_version, postgresqlrc, user_clusters)],
                         ids=lambda t: "+".join(f.__name__ for f in t) or "installed")
@pytest.mark.parametrize("args", ["show port", "-s get cluster_name", "postgresql.conf show all", "start.conf show x",
                                  "pg_ctl.conf show all", "show", "edit x"])
def test_pg_conftool_on_the_default_cluster(tree, tmp_path_factory, setups, args):
    judge_read_only(tree, tmp_path_factory, f"pg_conftool {args}", *setups)
