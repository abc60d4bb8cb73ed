"""Differential tests of the file-utility models against GNU coreutils 9.1 (see cmdharness)."""

import os

import pytest

from cmdharness import compare

RM = [
    "rm f1", "rm -f f1 nonexist", "rm nonexist", "rm -f nonexist", "rm -f", "rm", "rm d", "rm -r d",
    "rm -rf d e", "rm -rv d", "rm -rv d/", "rm -d e", "rm -d d", "rm -dv e f1", "rm lf", "rm ld",
    "rm ld/", "rm -r ld/", "rm -rf ld", "rm dangling", "rm -v f1 f2 exe", "rm -- f1", "rm -rf .",
    "rm -r ..", "rm -r d/..", "rm -fr d/sub/.", "rm f1/", "rm -f f1/", "rm -f f1/x", "rm f1/x",
    "rm -rf d/sub/deep d/a", "rm -R d", "rm fifo", "rm h1", "rm --force f1",
    "rm --recursive --verbose d", "rm --verb f1", "rm --no-preserve-root -rf e", "rm -rf /", "rm -fr //",
    "rm -r --preserve-root e", "rm '' f1", "rm -f ''", "rm -r e/", "rm -v d/a d/b", "rm -rf loop1",
    "rm loop1/", "rm dangling/", "rm -r dangling/", "rm -rf dangling/", "rm -r tmp", "rm -rf usr/bin/tool usr",
]

RMDIR = [
    "rmdir e", "rmdir d", "rmdir f1", "rmdir nonexist", "rmdir", "rmdir -p d/sub/deep",
    "rmdir --ignore-fail-on-non-empty d", "rmdir --ignore-fail-on-non-empty -p d/sub", "rmdir -v e",
    "rmdir ld", "rmdir ld/", "rmdir e/", "rmdir -pv d/sub/deep/e", "rmdir e e", "rmdir dangling",
    "rmdir -p e/", "rmdir tmp usr/bin", "rmdir .", "rmdir e/.",
]

MKDIR = [
    "mkdir -Z x", "mkdir --context=system_u:object_r:var_t:s0 x", "mkdir -pZ x/y", "mkdir --context x",
    "mkdir x", "mkdir e", "mkdir -p e", "mkdir -p x/y/z", "mkdir x/y", "mkdir -pv x/y/z", "mkdir -v x y",
    "mkdir -m 700 x", "mkdir -m 1777 x", "mkdir -m u=rwx,g=rx x", "mkdir -m a+w x", "mkdir -m =rx x",
    "mkdir -p -m 750 x/y", "mkdir -m bad x", "mkdir", "mkdir f1", "mkdir -p f1", "mkdir -p f1/x",
    "mkdir f1/x", "mkdir ld/new", "mkdir -p ld/new/deeper", "mkdir dangling", "mkdir -p dangling",
    "mkdir x/", "mkdir -p x//y/", "mkdir -m 2755 x", "mkdir -m 4755 x", "mkdir -p ./x/../y",
    "mkdir -p d/sub/deep", "mkdir --parents --mode=711 x/y", "mkdir -m g+s x",
]

MV = [
    "mv -Z f1 g", "mv -Z f1 d", "mv --context f1 g",
    "mv f1 g", "mv f1 d", "mv f1 d/", "mv f1 e/g", "mv d e", "mv d x", "mv e d", "mv f1 f2", "mv -v f1 f2",
    "mv f1 f1", "mv nonexist x", "mv f1", "mv", "mv f1 f2 exe", "mv f1 f2 e", "mv -t e f1 f2",
    "mv -t nonexist f1", "mv -T d e", "mv -T e d", "mv -T f1 e", "mv -n f1 f2", "mv -f f1 f2",
    "mv d d/sub", "mv d d", "mv lf g", "mv ld x", "mv dangling d", "mv h1 h2", "mv f1 nonexist/x",
    "mv e f1", "mv f1 ld", "mv f1 ld/", "mv d/sub .", "mv d/sub/deep/e ./", "mv -v d e x",
    "mv -T f1 f2 exe", "mv f1/ g", "mv e/ x", "mv fifo e", "mv --target-directory=e f1", "mv d/a d/b d/sub",
]

LN = [
    "ln -s f1 l", "ln -s f1 lf", "ln -sf f1 lf", "ln -sf f2 lf", "ln -s nowhere l", "ln f1 hard",
    "ln d hard", "ln -s f1 d", "ln -s /etc/passwd d/pw", "ln -sf f1 ld", "ln -sfn f1 ld", "ln -sfT f1 ld",
    "ln -sfn f1 d", "ln -sf f1 e", "ln -svf f1 l", "ln -v f1 hard", "ln -s", "ln", "ln -s f1", "ln -s d/a",
    "ln -s f1 f2 e", "ln -s f1 f2 exe", "ln -st e f1 f2", "ln -s f1 nonexist/l", "ln nonexist x",
    "ln -f f1 h1", "ln -f h1 h2", "ln -sr f1 d/sub/l", "ln -sr d/sub/c l", "ln -srf d/a d/sub/deep/l",
    "ln -r f1 x", "ln -sfT f1 e", "ln -sf f1 dangling", "ln -s ../f1 d/l2", "ln -sfv f1 f2",
    "ln lf hl", "ln -L lf hl", "ln -P lf hl", "ln -sn f1 ld", "ln -sf d/a d/b e",
]

CP = [
    "cp -Z f1 g", "cp --context=system_u:object_r:var_t:s0 f1 g", "cp -aZ d g",
    "cp f1 g", "cp f1 f2", "cp f2 g", "cp exe g", "cp f1 d", "cp f1 e/", "cp f1 f2 e", "cp f1 f2 exe",
    "cp d x", "cp -r d x", "cp -R d e", "cp -r d/ x", "cp -a d x", "cp -a d e", "cp -p f2 g", "cp -a f2 g",
    "cp lf g", "cp -d lf g", "cp -P lf g", "cp -a lf g", "cp -r ld x", "cp -rL ld x", "cp -a ld x",
    "cp dangling g", "cp -d dangling g", "cp -a dangling g", "cp f1 f1", "cp f1 lf", "cp lf f1",
    "cp -v f1 g", "cp -rv d x", "cp -av d x", "cp", "cp f1", "cp nonexist g", "cp f1 nonexist/g",
    "cp -T d e", "cp -rT d e", "cp -t e f1 f2", "cp -f f1 f2", "cp --remove-destination f1 lf",
    "cp --remove-destination f1 f2", "cp -n f1 f2", "cp --preserve=mode f2 g", "cp -p exe e",
    "cp -a h1 h2 e", "cp -a d/. x", "cp -r d/sub/. e", "cp -r e f1", "cp f1 e", "cp -a fifo g",
    "cp -r fifo g", "cp -rd d x", "cp --no-preserve=mode -a f2 g", "cp -r d/sub d/a e",
    "cp -aT d e", "cp -l f1 g", "cp -s f1 g", "cp -R --preserve=all d x",
]

CHMOD = [
    "chmod 755 f1", "chmod 0600 f1 f2", "chmod u+x f1", "chmod go-w f1", "chmod a=rX d", "chmod -R a=rX d",
    "chmod -R go-rwx d", "chmod -R 700 d", "chmod 4755 exe", "chmod u+s exe", "chmod g+s d", "chmod +t tmp",
    "chmod o-t tmp", "chmod 755 d", "chmod 2755 d", "chmod 02755 d", "chmod 00755 d", "chmod u=rw,g=r,o= f1",
    "chmod g=u f1", "chmod o=g f2", "chmod +x f1", "chmod -x exe", "chmod -w f1", "chmod =w f1", "chmod +w f2",
    "chmod a-x,u+x f1", "chmod 644 lf", "chmod 644 dangling", "chmod 644 nonexist", "chmod -f 644 nonexist",
    "chmod xyz f1", "chmod 7777 f1", "chmod 17777 f1", "chmod", "chmod 644", "chmod -v 644 f1",
    "chmod -v 600 f1 f2", "chmod -c 600 f1 f2", "chmod -Rv 755 d", "chmod -R 644 ld", "chmod -Rc u+w d",
    "chmod u+rwx,g-w,o=x f1", "chmod ugo+rwx f1", "chmod u-s exe", "chmod a+X f1 exe d", "chmod 755 -- f1",
    "chmod -R 0755 usr", "chmod u+x,g+x -R d", "chmod 640 fifo", "chmod +r f2", "chmod u+ f1", "chmod g-s d",
    "chmod =r,+w f1", "chmod a=,u=w f1",
    # --reference (debianutils' add-shell/remove-shell/update-shells)
    "chmod --reference=f2 f1", "chmod --reference=exe f1 f2", "chmod --reference f2 f1", "chmod --reference=nonexist f1",
    "chmod --reference=tmp d", "chmod -v --reference=f2 f1", "chmod --reference=f1 nonexist", "chmod --reference=f1",
    "chmod --reference=lf f2", "chmod -R --reference=f2 d",
]

CHOWN = [
    "chown --reference=f2 f1", "chown --reference=f1 f2 exe", "chown -v --reference=f2 f1", "chown --reference=nonexist f1",
    "chgrp --reference=f2 f1", "chgrp -c --reference=f2 f1 exe", "chown -R --reference=f2 d", "chown --reference=f2",
    "chown root f1", "chown root:root f2", "chown daemon:daemon f1", "chown daemon f1", "chown :daemon f1",
    "chown daemon: f1", "chown 1:1 f1", "chown 4242:4343 f1", "chown nosuchuser f1", "chown root:nosuchgroup f1",
    "chown :nosuchgroup f1", "chown -R daemon:daemon d", "chown -R bin ld", "chown bin lf", "chown -h bin lf",
    "chown bin dangling", "chown -h bin dangling", "chown bin nonexist", "chown -f bin nonexist",
    "chown -v daemon:daemon f1", "chown -v root f1", "chown -c root f1 f2", "chown -v :daemon f1",
    "chown -v bin. f1", "chown -Rv 2:2 d", "chown", "chown root", "chown a:b:c f1", "chown '' f1",
    "chown : f1", "chown -v 0:0 f2", "chown root. f1", "chgrp daemon f1", "chgrp -v daemon f1",
    "chgrp -R 1 d", "chgrp nosuchgroup f1", "chgrp -v root f1", "chgrp -h daemon lf", "chgrp daemon lf",
    "chown www-data:www-data -R d/sub", "chown -c daemon f2",
]

TOUCH = [
    "touch new", "touch f1", "touch -c new", "touch -c f1", "touch d/new e/new", "touch nonexist/x",
    "touch new/", "touch f1/", "touch dangling", "touch -h dangling", "touch -h new", "touch", "touch -m f1",
    "touch -a f1", "touch ld", "touch lf",
]

TOUCH_TIMES = [
    ("touch -d '2020-01-02 03:04:05' f1", ("f1",)), ("touch -d @1234567890 new", ("new",)),
    ("touch -t 202001020304 f1", ("f1",)), ("touch -t 202001020304.05 new", ("new",)),
    ("touch -r d/a f2", ("f2",)), ("touch -d '2019-06-01' f1 new", ("f1", "new")),
    ("touch -m -d @1 f1", ("f1",)), ("touch -h -d @5 lf", ("lf",)), ("touch -r nonexist f1", ()),
    ("touch -d 2001-02-03T04:05:06 f1", ("f1",)), ("touch -d @7 lf", ("f1",)),
    ("touch -c -d @9 new f1", ("f1",)), ("touch -d '2020-01-02 03:04:05 UTC' f1", ("f1",)),
]

INSTALL = [
    "install f1 g", "install -m 644 f1 g", "install -m 0600 f1 e", "install -d x", "install -d x/y/z",
    "install -dv x/y", "install -d -m 700 x", "install -d -m 700 e", "install -D f1 x/y/g",
    "install -Dv f1 x/y/g", "install -D -m 640 f1 x/g", "install -o daemon -g daemon f1 g",
    "install -o nosuch f1 g", "install -g nosuch f1 g", "install f1 f2", "install f1 lf", "install -v f1 g",
    "install f1 f2 e", "install -t e f1 f2", "install -T f1 e", "install d x", "install nonexist g",
    "install", "install -d", "install f1", "install -m u=rw,go=r f1 g", "install -m +x f1 g",
    "install -d -o daemon e", "install -p f1 g", "install -Dt x/y f1 f2", "install -m 4755 exe g",
    "install -c f1 g", "install -d -m 2775 x",
]

PATHS = [
    "readlink lf", "readlink ld", "readlink f1", "readlink -v f1", "readlink nonexist", "readlink -f lf",
    "readlink -f ld/sub/../a", "readlink -f d/up", "readlink -f dangling", "readlink -e dangling",
    "readlink -m dangling/x/../y", "readlink -f nonexist/x", "readlink -m nonexist/x", "readlink -e f1",
    "readlink -f loop1", "readlink -m loop1", "readlink -n lf", "readlink -fn lf ld", "readlink",
    "readlink -f .", "readlink -f ./d/sub/../sub/deep", "readlink -z lf", "readlink -ev nonexist",
    "readlink -fv f1/x", "readlink -f f1/", "readlink -f d/", "readlink -f ''", "readlink lf ld dangling",
    "realpath lf", "realpath ld/sub", "realpath nonexist", "realpath nonexist/x", "realpath -e nonexist",
    "realpath -m nonexist/x/../y", "realpath -s lf", "realpath -s ld/../f1", "realpath d/up",
    "realpath --relative-to=d d/sub/c", "realpath --relative-to=d/sub f1", "realpath --relative-to=ld d/a",
    "realpath -q nonexist/x", "realpath loop1", "realpath", "realpath --relative-base=d d/a f1",
    "realpath -z f1 d", "realpath f1/", "realpath -e f1 d dangling",
    "basename /usr/bin/foo", "basename /usr/bin/", "basename foo.txt .txt", "basename .txt .txt",
    "basename /", "basename //", "basename ''", "basename", "basename a b c", "basename -a /a/b /c/d",
    "basename -s .c a.c b.c", "basename -z a/b", "basename a/b/ b", "basename --suffix=.d x.d",
    "dirname /usr/bin/foo", "dirname /usr/bin/", "dirname foo", "dirname /", "dirname //", "dirname ///a",
    "dirname //a", "dirname a//b//", "dirname ''", "dirname", "dirname a/b c/d", "dirname -z a/b",
    "dirname /a", "dirname ./x", "dirname ../x/y",
]


@pytest.mark.parametrize("cmd", RM)
def test_rm(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", RMDIR)
def test_rmdir(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", MKDIR)
@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_mkdir(tmp_path, cmd, umask):
    compare(tmp_path, cmd, umask=umask)


@pytest.mark.parametrize("cmd", MV)
def test_mv(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", LN)
def test_ln(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", CP)
def test_cp(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", CHMOD)
@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_chmod(tmp_path, cmd, umask):
    compare(tmp_path, cmd, umask=umask)


@pytest.mark.parametrize("cmd", CHOWN)
def test_chown(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", TOUCH)
def test_touch(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd,paths", TOUCH_TIMES)
def test_touch_times(tmp_path, cmd, paths):
    compare(tmp_path, cmd, times=paths)


@pytest.mark.parametrize("cmd", INSTALL)
def test_install(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd", PATHS)
def test_paths(tmp_path, cmd):
    compare(tmp_path, cmd)


def test_context_option_defers_on_an_selinux_image(tmp_path):
    """-Z matters only where the booted kernel runs SELinux: such an image is deferred."""
    from cmdharness import build_tree, run_model
    from nuwa.script.context import Defer
    root = str(tmp_path / "img")
    build_tree(root)
    os.makedirs(os.path.join(root, "etc/selinux"))
    with open(os.path.join(root, "etc/selinux/config"), "w") as f:
        f.write("# comment\nSELINUX=permissive\nSELINUXTYPE=default\n")
    for argv in (["mkdir", "-Z", "x"], ["mv", "-Z", "f1", "g"], ["cp", "-Z", "f1", "g"]):
        with pytest.raises(Defer):
            run_model(root, argv, b"", 0o022)
    assert not os.path.exists(os.path.join(root, "x")) and os.path.exists(os.path.join(root, "f1"))
    with open(os.path.join(root, "etc/selinux/config"), "w") as f:
        f.write("SELINUX=disabled\n")
    assert run_model(root, ["mkdir", "-Z", "x"], b"", 0o022) == (0, b"", b"")
