"""Differential tests of the find and xargs models against GNU findutils 4.9 (see cmdharness).

The real find lists entries in the kernel's readdir order; the model uses HostDirFS.readdir,
which passes the same order through, so outputs compare byte for byte.
"""

import pytest

from cmdharness import compare, deferred

FIND = [
    "find d", "find d/", "find .", "find", "find d e", "find d -name a", "find d -name '*.c'", "find . -name 'f*'",
    "find . -iname 'F1'", "find d -type f", "find d -type d", "find . -type l", "find . -type p", "find . -type f,l",
    "find d -maxdepth 1", "find d -mindepth 2", "find d -maxdepth 1 -type f", "find d -name a -maxdepth 1",
    "find . -maxdepth 0", "find d -depth", "find d -path 'd/sub/*'", "find . -path './d*' -prune -o -print",
    "find . -name d -prune", "find d ! -name a", "find d -not -type d", "find d \\( -name a -o -name b \\)",
    "find d -name a -o -name b -print", "find d -name a -print -o -print0", "find d -print0", "find . -empty",
    "find . -perm 644 -type f", "find . -perm -u+x -type f", "find . -perm /022", "find . -perm -4000",
    "find . -perm 0755", "find . -user root -name f2", "find . -user daemon", "find . -group daemon",
    "find . -uid 1", "find . -nouser", "find . -links 2 -type f", "find . -links +1 -type f", "find . -size 0",
    "find . -size -2 -type f", "find . -size +10c", "find . -newer d/a -type f", "find nonexist", "find nonexist d/sub",
    "find d -name", "find d -maxdepth x", "find d -type q", "find d \\( -name a", "find d -user nosuchuser",
    "find d -quit", "find d -name sub -quit -o -print", "find lf", "find ld", "find ld/", "find dangling",
    "find d -true", "find d -false", "find d -regex '.*/[ab]'", "find d -executable -type f", "find d -name 'su?'",
    "find d -name '[ab]'", "find d -name '[!a]'", "find d -name '\\a'", "find . -name '*' -maxdepth 1 -type f",
    "find d -delete", "find d -name a -delete", "find e -delete", "find d -type f -delete -print",
    "find d/sub -depth -print", "find . -name 'f1' -o -name 'f2'", "find d -mindepth 1 -maxdepth 1 -name '*'",
    "find d , -name a", "find d -readable -name a", "find /nonexist", "find d -name a -a -type f",
    "find d -exec basename {} \\;", "find d -type f -exec cat {} \\;", "find d -type f -exec cat {} +",
    "find d -name a -exec rm {} \\;", "find d -type f -exec chmod 600 {} +", "find d -exec false \\;",
    "find d -name b -exec rm -f {} \\; -print", "find . -maxdepth 1 -name 'f*' -exec basename {} .x \\;",
    "find d -exec", "find d -exec rm \\;",
    # symbolic links followed (-L everywhere, -H for the starting points) and -xtype
    "find -L .", "find -L . -type l", "find -L . -type d", "find -L . -type f -name '*1'", "find -L ld -name a",
    "find -L loop1", "find -L dangling", "find -L lf ld", "find -H ld lf dangling loop1 -type f",
    "find -H . -type l", "find -H ld", "find -P -L -H ld -type d", "find -L -P ld", "find . -xtype l",
    "find . -xtype f", "find . -xtype d", "find -L . -xtype l", "find -H ld lf dangling -xtype l",
    "find -L . -type f -size -2", "find -L . -empty", "find -L d -maxdepth 1 -type f -exec cat {} \\;",
    "find -L . -type l -o -type d -print", "find -L . -newer f1 -type f", "find -L ld -depth",
    # -follow: -L's traversal whatever its position (mariadb-server's preinst)
    "find . -follow -type f", "find . -type l -follow", "find . -name ld -follow -type d", "find -H ld -follow",
    "find . -follow -not -group root -print0", "find ld -follow -maxdepth 1",
    # -printf with the name directives (initramfs-tools' copy_modules_dir: -printf '%f\\n')
    "find d -name '*' -printf '%f\\n'", "find . d -printf '%p|%h|%f|%P\\n'", "find d -printf '%%%f\\t\\0'",
    "find / -maxdepth 0 -printf '%f:%h:%P\\n'", "find . -regextype posix-extended -regex '.*/[[:alnum:]\\._-]+$' -type f",
    "find d -execdir basename {} \\;", "find d -type f -execdir ls {} +", "find . -name a -execdir cp -p {} ../copied \\;",
    "find -L . -name '*1' -execdir ls -d {} +", "find d -execdir",
    "find . -regextype posix-basic -regex '.*/f[12]\\{1\\}'", "find d -type f -printf '%f\\n' -o -printf 'D%p\\n'",
]

XARGS = [
    ("xargs", b"a b\nc\n"), ("xargs echo x", b"a b\nc\n"), ("xargs -n1", b"a b c\n"), ("xargs -n 2 echo", b"a b c\n"),
    ("xargs -0", b"a b\0c\0"), ("xargs -r", b""), ("xargs", b""), ("xargs -r echo x", b"  \n"),
    ("xargs -I{} echo x{}y", b"a b\nc\n"), ("xargs -I % basename %", b"/a/b\n/c/d\n"), ("xargs rm", b"f1 f2\n"),
    ("xargs rm -f", b"nonexist f1\n"), ("xargs rm", b"nonexist\n"), ("xargs -0 rm", b"f1\0lf\0"),
    ("xargs echo", b"'a b' \"c d\" e\\ f\n"), ("xargs echo", b"'unterminated\n"), ("xargs -L1 echo", b"a b\nc\n\nd\n"),
    ("xargs chmod 700", b"f1\nexe\n"), ("xargs -d , echo", b"a,b,c"), ("xargs cat", b"f1 nonexist f2\n"),
]


@pytest.mark.parametrize("cmd", FIND)
def test_find(tmp_path, cmd):
    compare(tmp_path, cmd)


@pytest.mark.parametrize("cmd,stdin", XARGS)
def test_xargs(tmp_path, cmd, stdin):
    compare(tmp_path, cmd, stdin=stdin)


def _loops(root):
    """Directory links back to an ancestor: find -L must stop at them (FTS_DC)."""
    import os
    os.makedirs(os.path.join(root, "x/y"))
    os.symlink("..", os.path.join(root, "x/back"))
    os.symlink("../../x", os.path.join(root, "x/y/up"))
    os.symlink("x", os.path.join(root, "lx"))


@pytest.mark.parametrize("cmd", ["find -L x lx", "find -L . -name back", "find -H lx -type l", "find x -xtype d",
                                 "find -L x -type d -empty", "find -L lx -xtype l"])
def test_find_follows_links_like_gnu_find(tmp_path, cmd):
    compare(tmp_path, cmd, setup=_loops)


@pytest.mark.parametrize("cmd", ["find d -mtime +7", "find -L d -delete", "find d -delete -follow", "find d -printf '%s'",
                                 "find d -ok rm {} ;", "find d -newermt 2020-01-01"])
def test_find_deferred(tmp_path, cmd):
    assert "not modelled" in deferred(tmp_path, cmd)


LONG = b" ".join(b"item%03d" % i for i in range(200)) + b"\n"


@pytest.mark.parametrize("cmd,stdin", [
    ("xargs --show-limits", b""), ("xargs --show-limits -r", b""), ("xargs --show-limits -s 100 echo", b"a b\n"),
    ("xargs -s 60 echo", LONG), ("xargs -s 60 -n 3 echo", LONG), ("xargs --max-chars=200 echo x", LONG),
    ("xargs -0 -s 30 echo", b"a\0bb\0ccc\0dddd\0eeeee\0ffffff\0"), ("xargs echo", LONG * 200),
])
def test_xargs_limits_and_batches(tmp_path, cmd, stdin):
    """--show-limits and command-line batching as on a booted system (8 MiB stack: ARG_MAX 2 MiB)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_STACK)
    if hard != resource.RLIM_INFINITY and hard < 8 << 20:
        pytest.skip("cannot give the real xargs the default 8 MiB stack limit")
    resource.setrlimit(resource.RLIMIT_STACK, (8 << 20, hard))
    try:
        compare(tmp_path, cmd, stdin=stdin)
    finally:
        resource.setrlimit(resource.RLIMIT_STACK, (soft, hard))
