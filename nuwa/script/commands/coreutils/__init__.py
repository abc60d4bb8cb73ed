"""The GNU coreutils family (Debian 12: coreutils 9.1), with the few small programs from
neighbouring packages that scripts use the same way.

- ``files``: rm, rmdir, mkdir, mv, ln;  ``copy``: cp, install;  ``attrs``: chmod, chown, chgrp,
  touch;  ``paths``: readlink, realpath, basename, dirname, mktemp, and ``which`` (debianutils);
- ``text``: cat, head, tail, cut, uniq, wc;  ``fold``: fold;  ``transform``: tr, sort, tsort;  ``listing``: ls;
- ``compare``: md5sum and sha*sum, stat, and ``cmp``/``diff -q`` (diffutils 3.8);
- ``ddcmd``: dd;  ``human``: gnulib's human_readable for df and dd;
- ``fsinfo``: df, and the device number ``stat %d`` prints (the booted guest's);
- ``users``: id, sync, sleep, uname, arch, and ``getent`` (glibc 2.36), whose hosts databases are
  ``gethosts`` (over ``nssconf``, the resolver's files);  ``datecmd``: date;
- ``envexpr``: env, expr, and ``getconf`` (glibc 2.36).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "base64": "encode.base64",
    "fold": "fold.fold",
    "chmod": "attrs.chmod",
    "chown": "attrs.chown",
    "chgrp": "attrs.chown",
    "touch": "attrs.touch",
    "md5sum": "compare.digest",
    "sha1sum": "compare.digest",
    "sha224sum": "compare.digest",
    "sha256sum": "compare.digest",
    "sha384sum": "compare.digest",
    "sha512sum": "compare.digest",
    "cmp": "compare.cmp",
    "diff": "compare.diff",
    "stat": "compare.stat_cmd",
    "df": "fsinfo.df",
    "dd": "ddcmd.dd",
    "cp": "copy.cp",
    "install": "copy.install",
    "date": "datecmd.date",
    "expr": "envexpr.expr",
    "env": "envexpr.env",
    "getconf": "envexpr.getconf",
    "rm": "files.rm",
    "rmdir": "files.rmdir",
    "mkdir": "files.mkdir",
    "mv": "files.mv",
    "ln": "files.ln",
    "ls": "listing.ls",
    "readlink": "paths.readlink",
    "realpath": "paths.realpath",
    "basename": "paths.basename",
    "dirname": "paths.dirname",
    "mktemp": "paths.mktemp",
    "which": "paths.which",
    "cat": "text.cat",
    "head": "text.head_tail",
    "tail": "text.head_tail",
    "cut": "text.cut",
    "uniq": "text.uniq",
    "wc": "text.wc",
    "tr": "transform.tr",
    "sort": "transform.sort",
    "tsort": "transform.tsort",
    "id": "users.id_cmd",
    "groups": "groups.groups",
    "getent": "users.getent",
    "sync": "users.sync",
    "sleep": "users.sleep",
    "uname": "users.uname",
    "arch": "users.arch_cmd",
    "yes": "text.yes",
    "od": "od.od",
})
