"""Differential harness for the service-management models (systemctl, deb-systemd-helper,
update-rc.d, invoke-rc.d): the real programs are the oracles.

Two identical roots are kept per test module: the real program runs on one (``systemctl
--root=ROOT`` from the host, or the tool inside ``chroot ROOT``), the model on the other
through :class:`HostDirFS`. Only the configuration the programs change (``etc/`` and
``var/lib/systemd``) is reset between cases, so a case costs a few milliseconds plus the real
program. Outputs are compared after the real root's path is removed from them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess

from debian_tree import link_tree, renew_copy
from helpers import runs
from helpers.trees import content_facts, tree_facts
from judges import tool
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Drop

MODELS = default_models()


#: the packages of the service tree (tests/debian_tree.bookworm_tree(SERVICES))
SERVICES = ("systemd", "systemd-sysv", "cron", "openssh-server", "rsyslog")
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}

U = "usr/lib/systemd/system"
_SERVICE = "[Service]\nExecStart=/bin/true\n"
#: synthetic units and configuration for the edge cases; value: text, or ("link", target)
SYNTHETIC = {
    f"{U}/multi-user.target": "[Unit]\nDescription=Multi-User\n",
    f"{U}/getty.target": "[Unit]\n",
    f"{U}/a.service": "[Unit]\nDescription=a\n" + _SERVICE
    + "[Install]\nWantedBy=multi-user.target\nAlias=aa.service\nAlso=b.service\n",
    f"{U}/b.service": _SERVICE + "[Install]\nRequiredBy=a.service\nAlso=a.service\n",
    f"{U}/static.service": _SERVICE,
    f"{U}/t@.service": _SERVICE + "[Install]\nWantedBy=multi-user.target\nDefaultInstance=one\n",
    f"{U}/u@.service": _SERVICE + "[Install]\nWantedBy=getty.target\n",
    f"{U}/c.service": _SERVICE + "[Install]\nWantedBy=multi-user.target\nAlso=nonexist.service\n",
    f"{U}/d.service": _SERVICE + "[Install]\nWantedBy=nothere.target\n",
    f"{U}/m.service": "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    f"{U}/o.service": _SERVICE + "[Install]\nWantedBy=getty.target\n",
    f"{U}/x.service": _SERVICE,
    f"{U}/x.service.d/inst.conf": "[Install]\nWantedBy=multi-user.target\nAlias=xalias.service\n",
    f"{U}/cy1.service": "[Service]\n[Install]\nAlso=cy2.service\nWantedBy=multi-user.target\n",
    f"{U}/cy2.service": "[Service]\n[Install]\nAlso=cy1.service\n",
    f"{U}/q.service": "# comment\n[Unit]\nDescription=quirks \\\n  continued\n[Foo]\nBar=1\n[Install]\n; semi\n"
    "WantedBy=\"multi-user.target\" \\\n  getty.target\nAlias=q2.service q3.service\nFooKey=1\n"
    "RequiredBy=%p-x.service\nUpheldBy=multi-user.target\n",
    f"{U}/spec@.service": "[Service]\n[Install]\nWantedBy=%p-%i.target\nDefaultInstance=%p\nAlias=%N-alias.service\n",
    f"{U}/v.service": "[Service]\n[Install]\nWantedBy=multi-user.target\nAlias=vend.service\n",
    f"{U}/vend.service": ("link", "v.service"),
    f"{U}/ind.service": "[Service]\n[Install]\nAlso=a.service\n",
    f"{U}/mk.service": "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    f"{U}/empty.service": "",
    f"{U}/ti@.service": "[Service]\n[Install]\nWantedBy=multi-user.target\n",
    f"{U}/bad.service": "[Invalid\n[Install]\nWantedBy=multi-user.target\n",
    f"{U}/r.socket": "[Socket]\nListenStream=1\n[Install]\nWantedBy=sockets.target\nRequiredBy=r.service\n",
    f"{U}/r.service": _SERVICE + "[Install]\nAlso=r.socket\nWantedBy=multi-user.target\n",
    f"{U}/mnt.mount": "[Mount]\n[Install]\nAlias=m2.mount\nWantedBy=multi-user.target\n",
    "usr/lib/systemd/system-preset/50-x.preset": "disable m.service\n# c\n\nenable a.*\ndisable d.*\n",
    "usr/lib/systemd/system-preset/90-y.preset": "enable x.service\ndisable *\n",
    "usr/local/lib/systemd/system/loc.service": _SERVICE + "[Install]\nWantedBy=multi-user.target\n",
    "opt/l.service": _SERVICE + "[Install]\nWantedBy=multi-user.target\n",
    "etc/systemd/system/l.service": ("link", "/opt/l.service"),
    "etc/systemd/system/o.service": _SERVICE + "[Install]\nWantedBy=multi-user.target\n",
    "etc/systemd/system/getty.target.wants/t@two.service": ("link", "/lib/systemd/system/t@.service"),
    "etc/systemd/system/multi-user.target.wants/gone.service": ("link", "/lib/systemd/system/gone.service"),
    "etc/systemd/system/multi-user.target.wants/static.service": ("link", "/lib/systemd/system/static.service"),
    "etc/systemd/system/mk.service": ("link", "/dev/null"),
    "etc/systemd/system-preset/10-local.preset": "enable ti@.service a b\ndisable v.service\nenable r.*\n",
    "etc/systemd/system-preset/90-y.preset": ("link", "/dev/null"),
}


def build(root: str, files: dict) -> None:
    """Create ``files`` under ``root`` (plus the merged-/usr ``lib`` link)."""
    os.makedirs(os.path.join(root, U), exist_ok=True)
    os.makedirs(os.path.join(root, "etc/systemd/system"), exist_ok=True)
    if not os.path.lexists(os.path.join(root, "lib")):
        os.symlink("usr/lib", os.path.join(root, "lib"))
    for rel, v in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(v, tuple):
            os.symlink(v[1], p)
        else:
            with open(p, "w") as f:
                f.write(v)


def copy_units(tree: str, root: str) -> None:
    """The unit and preset directories and ``etc/systemd`` of a real tree, into ``root``."""
    os.makedirs(os.path.join(root, "usr/lib/systemd"), exist_ok=True)
    for d in ("system", "system-preset", "user", "user-preset"):
        src = os.path.join(tree, "usr/lib/systemd", d)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(root, "usr/lib/systemd", d), symlinks=True)
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    shutil.copytree(os.path.join(tree, "etc/systemd"), os.path.join(root, "etc/systemd"), symlinks=True)
    os.symlink("usr/lib", os.path.join(root, "lib"))


class Pair:
    """A template root and two working copies (real, model) reset to it between cases.

    With ``link=True`` the copies hard-link the template's files (``cp -al``, fast for a whole
    Debian tree) except the ``RESET`` directories, which are always fresh copies: the programs
    under test write only there (other writes would reach the template through the links).
    """

    RESET = ("etc", "var/lib/systemd")

    def __init__(self, base: str, template: str, link: bool = False):
        self.template = template
        self.real = os.path.join(base, "real")
        self.model = os.path.join(base, "model")
        for d in (self.real, self.model):
            if link:
                link_tree(template, d)
            else:
                shutil.copytree(template, d, symlinks=True)
        self.reset()

    def reset(self, setup=None) -> None:
        """Fresh copies of the RESET directories; ``setup(root)`` then runs on both roots.

        A root is left as it is when its RESET directories cannot be told from the
        template's (:func:`_state`: what a program can read of them, times included), and an
        overlay copy of a cached template whose changes all lie in them is remounted fresh
        (:func:`debian_tree.renew_copy`); the others are removed and copied again. Each way
        the case starts from the template's RESET directories; a copy costs a process and, on
        an overlay, a copy-up of all ``/etc``, most cases change nothing."""
        for d in (self.real, self.model):
            if not renew_copy(self.template, d, list(self.RESET)):
                for sub in self.RESET:
                    src, dst = os.path.join(self.template, sub), os.path.join(d, sub)
                    if self._template_state(sub) == _state(dst):
                        continue
                    shutil.rmtree(dst, ignore_errors=True)
                    if os.path.isdir(src):
                        subprocess.run(["cp", "-a", src, dst], check=True)
            if setup:
                setup(d)

    def _template_state(self, sub: str) -> dict:
        """:func:`_state` of the template's ``sub`` (read once: the template never changes)."""
        cache = self.__dict__.setdefault("_states", {})
        if sub not in cache:
            cache[sub] = _state(os.path.join(self.template, sub))
        return cache[sub]


def _state(top: str) -> dict | None:
    """Everything a program can read of the tree at ``top`` but its inode numbers, ctimes and
    atimes: per relative path its type, mode, owner, link count, size, mtime (ns), content or
    link target and extended attributes; None when ``top`` does not exist."""
    if not os.path.lexists(top):
        return None
    out = {}
    paths = [top]
    if os.path.isdir(top) and not os.path.islink(top):
        for dirpath, dirnames, filenames in os.walk(top):
            paths += [os.path.join(dirpath, n) for n in dirnames + filenames]
    for p in paths:
        st = os.lstat(p)
        rec = (st.st_mode, st.st_uid, st.st_gid, st.st_nlink, st.st_size, st.st_mtime_ns)
        if stat.S_ISREG(st.st_mode):
            with open(p, "rb") as f:
                rec += (f.read(),)
        elif stat.S_ISLNK(st.st_mode):
            rec += (os.readlink(p),)
        names = sorted(os.listxattr(p, follow_symlinks=False))
        rec += tuple((n, os.getxattr(p, n, follow_symlinks=False)) for n in names)
        out[os.path.relpath(p, top)] = rec
    return out


def snapshot(root: str, subs=("etc", "var/lib/systemd")) -> dict[str, tuple]:
    """Every path below ``subs``: (kind, mode, link target or content)."""
    return tree_facts(root, content_facts, subs=subs)


def run_real_systemctl(root: str, args: list[str], env: dict | None = None) -> tuple[int, str, str]:
    """``systemctl --root=ROOT ARGS`` on the host; the root prefix removed from its output."""
    status, out, err = runs.run_real([tool("systemctl"), f"--root={root}", *args], env=env or ENV)
    return status, out.decode().replace(root, ""), err.decode().replace(root, "")


def run_chroot(root: str, argv: list[str], env: dict | None = None, stdin: bytes = b"") -> tuple[int, str, str]:
    """``chroot ROOT ARGV`` (the real tool inside the tree); SYSTEMD_OFFLINE=1 stands for the
    chroot detection this container's /proc cannot give systemctl."""
    e = dict(env or ENV)
    e.setdefault("SYSTEMD_OFFLINE", "1")
    status, out, err = runs.run_real(argv, chroot=root, env=e, stdin=stdin, timeout=120)
    return status, out.decode(), err.decode()


def run_model(root: str, argv: list[str], env: dict | None = None, run=None) -> tuple[int, str, str]:
    """The model of ``argv[0]`` on ``root`` through HostDirFS (cwd /)."""
    status, out, err = runs.run_model(root, argv, env=env or ENV, run=run, models=MODELS)
    return status, out.decode(), err.decode()


def outcome(root: str, argv: list[str], env: dict | None = None):
    """``run_model``, with a Drop or Defer turned into a comparable tuple."""
    try:
        return run_model(root, argv, env)
    except Drop as d:
        return ("dropped", d.status, d.reason)
    except Defer as d:
        return ("deferred", d.reason)
