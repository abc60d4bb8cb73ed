"""The model set: built explicitly, passed to the interpreter, never global.

A restricted set makes a program unknown (deferred), an injected model is called, two
interpreters with different sets in one process do not see each other's models (also when
one runs inside a model of the other), children inherit their parent's set, and the default
set holds exactly the programs the import-time registry held before the families existed.
"""

from __future__ import annotations

import pytest

from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import FAMILIES, default_models
from nuwa.script.context import Defer, Invocation, ModelSet
from nuwa.script.interp import run_script
from nuwa.script.record import DEFERRED, SIMULATED

#: every program name the registry (``nuwa.script.context.REGISTRY``, filled by importing
#: ``nuwa.script.commands``) held on main before the model set replaced it: 107 names
OLD_REGISTRY = {
    "addgroup", "adduser", "awk", "basename", "cat", "chfn", "chgrp", "chmod", "chown", "cmp", "cp", "cut", "date",
    "deb-systemd-helper", "deb-systemd-invoke", "debconf-communicate", "debconf-escape", "delgroup", "deluser",
    "diff", "dirname", "dpkg", "dpkg-divert", "dpkg-maintscript-helper", "dpkg-query", "dpkg-statoverride",
    "dpkg-trigger", "egrep", "env", "expr", "fgrep", "find", "frontend", "gawk", "getconf", "getent", "getopt",
    "gpasswd", "grep", "groupadd", "groupdel", "groupmod", "head", "hostname", "id", "initctl", "install",
    "invoke-rc.d", "ischroot", "killall", "ldconfig", "ldconfig.real", "ln", "locale", "logger", "ls", "mawk",
    "md5sum", "mkdir", "mktemp", "mountpoint", "mv", "nawk", "nproc", "openssl", "original-awk", "perl", "pgrep",
    "pidof", "pkill", "readlink", "realpath", "rm", "rmdir", "run-parts", "runlevel", "sed", "seq", "service",
    "sha1sum", "sha224sum", "sha256sum", "sha384sum", "sha512sum", "sleep", "sort", "start-stop-daemon", "stat",
    "sync", "systemctl", "systemd-sysusers", "systemd-tmpfiles", "tail", "telinit", "touch", "tr", "uname", "uniq",
    "update-alternatives", "update-rc.d", "useradd", "userdel", "usermod", "wall", "wc", "which", "xargs",
}

#: models added since the model set replaced the registry
ADDED = {
    "pam-auth-update",  # issue 13: libpam-runtime's Perl program
    "update-passwd",  # issue 13: base-passwd's postinst, on every upgrade of it
    "ps", "ss", "netstat", "lsof", "fuser",  # issue 13: probes of the running system
    "depmod", "modprobe", "modinfo",  # issue 14: kmod
    # issue 14, GRUB: the grub family and gettext-base's gettext
    "grub-probe", "grub-mkrelpath", "grub-script-check", "grub-editenv", "grub-install", "grub-bios-setup",
    "os-prober", "gettext", "systemd-detect-virt",
    "ldd",  # issue 14: initramfs-tools' copy_exec
    "cpio", "gzip", "xz", "zstd", "lz4",  # issue 14: what mkinitramfs packs with
    "tsort",  # issue 14: mkinitramfs orders its hooks
    "mkinitramfs", "dracut",  # issue 14: the guards of the initramfs builders
    "blkid", "fstype",  # issue 14: the fsck hook's questions about the image's own disk
    "aa-enabled", "aa-status",  # issue 14: apparmor's postinst (a kernel's Recommends), no running kernel
    "arch", "dpkg-architecture",  # issue 18: the image's machine
    # issue 14: Python byte-compilation
    "python3", *(f"python3.{minor}" for minor in range(5, 15)), "py3compile", "py3clean",
    "linux-version", "linux-update-symlinks",  # issue 14: linux-base
    # issue 13: the catalog and registry updaters (xml-core, sgml-base, libxml-sax-perl, mailcap)
    "update-xmlcatalog", "update-catalog", "update-perl-sax-parsers", "update-mime",
    # issue 13: programs whose output real maintainer scripts capture or test
    "df", "dd", "iconv", "su", "runuser",
    "stty", "tty",
    # issue 13: server packages' helpers (apache2's a2enmod under its six names)
    "a2enmod", "a2dismod", "a2enconf", "a2disconf", "a2ensite", "a2dissite",
    "update-locale",  # issue 13: locales' postinst
    "make-ssl-cert",  # issue 13: ssl-cert's postinst (the snakeoil certificate)
    "epmd",  # issue 13: erlang-base's prerm asks epmd to exit; no epmd runs offline
    "vgcfgbackup",  # issue 13: lvm2's postinst; no volume group is visible offline
    "pg_checksystem", "run-upgrade-scripts",  # issue 13: postgresql-common's postinst, no cluster
    "iscsi-iname", "nvme", "uuidgen",  # issue 13: identifiers open-iscsi's and nvme-cli's postinsts make
    "chronyd",  # issue 13: chrony's postinst (`chronyd -p`)
    "ckbcomp",  # issue 13: console-setup's postinst (setupcon --save-only compiles the keymap)
    "newaliases", "postalias",  # issue 13: postfix's postinst rebuilds /etc/aliases.db
    "mandb",  # issue 13: man-db's postinst and trigger (`mandb -cq`, `mandb -pq`)
    "systemd-machine-id-setup",  # issue 13: systemd's postinst
    "journalctl", "systemd-hwdb",  # issue 13: binary indexes (the catalog database, hwdb.bin) written byte for byte
    "install-info", "ginstall-info",  # issue 13: install-info's trigger (update-info-dir)
    "mysqladmin", "mariadb-admin",  # issue 13: mariadb-server's postrm pings the server (none runs)
    "helpztags",  # issue 13: vim-runtime's postinst (Vim help tags)
    "rndc-confgen",  # issue 13: bind9's postinst makes rndc's key
    "dbus-uuidgen",  # issue 13: dbus-daemon's postinst (--ensure)
    "emacs-install", "emacs-remove",  # issue 13: an Emacs flavor's postinst and prerm (emacsen-common)
    "dnsdomainname",  # issue 13: krb5-config's config guesses the realm from it
    "lsmod",  # issue 13: console-setup's config asks whether speakup is loaded (a dormant image: nothing)
    "base64",  # issue 13: slapd's postinst encodes random bytes for a password
    "pg_lsclusters", "pg_conftool", "pg_updatedicts",  # issue 13: postgresql-common's cluster tools
    "setcap", "getcap",  # issue 13: libcap2-bin, file capabilities (iputils-ping, iproute2...)
    "update-mime-database",  # issue 13: shared-mime-info's postinst and trigger
    "glib-compile-schemas", "gio-querymodules",  # issue 13: libglib2.0-0's postinst and triggers
    "yes",  # issue 13: an endless writer into a pipeline (nuwa.script.endless)
    "od",  # issue 13: `head -c N /dev/urandom | od`, grub-pc's and clamav-freshclam's dumps
    "emacs-package-install", "emacs-package-remove",  # issue 13: emacsen-common and every Emacs add-on
    "pwck", "grpck", "pwconv", "grpconv",  # issue 13: shadowconfig (passwd's postinst)
    "squid",  # issue 13: squid's postinst reads its configuration with `squid -k parse`
    "slappasswd",  # issue 13: slapd's postinst hashes the admin password
    "pam_getenv",  # issue 13: postgresql-common's set_system_locale
    "gtk-update-icon-cache",  # issue 13: update-icon-caches (icon themes' postinst and postrm)
    "linux-check-removal",  # issue 13: every kernel image's prerm (no kernel of a dormant image runs)
    "kbd_mode",  # issue 13: setupcon (console-setup's postinst); a dormant image has no console
    "groups",  # issue 13: clamav-daemon's debconf config
    "postconf",  # issue 13: postfix's postinst edits and reads main.cf (and its config reads it)
    "fold",  # issue 13: postfix's postinst folds its closing message
    "ucfq",  # issue 13: grub-pc's postinst (who registered /etc/default/grub), dovecot's postrm
    "setpriv",  # issue 13: man-db's postinst runs mandb as the man user
    "cracklib-packer", "file",  # issue 13: update-cracklib (cracklib-runtime's postinst and trigger)
}


@pytest.fixture
def fs():
    m = MemoryFS()
    for d in ("/usr/bin", "/bin", "/tmp", "/etc"):
        m.makedirs(d)
    # programs present in the image (content never runs: only models do)
    for name in ("sed", "probe", "cat", "xargs"):
        m.write_bytes(f"/usr/bin/{name}", b"\x7fELF\x02\x01\x01", 0o755)
    m.write_bytes("/bin/sh", b"\x7fELF\x02\x01\x01", 0o755)
    m.write_bytes("/etc/conf", b"colour=red\n")
    return Overlay(m)  # savepoints: child shells run atomically


def run(fs, text, models):
    return run_script(fs, text, ["configure"], name="postinst", models=models)


def test_default_set_has_every_model_of_the_old_registry():
    models = default_models()
    assert len(OLD_REGISTRY) == 107
    assert set(models) == OLD_REGISTRY | ADDED
    # each family declares its own programs, and no program is declared by two families
    declared = [n for family in FAMILIES for n in family.MODELS]
    assert len(declared) == len(set(declared)) == len(models)
    # perl is declared once, by miscutils (it dispatches ucf's one-liner itself)
    assert models["perl"].__module__ == "nuwa.script.commands.miscutils.perl_oneliners"


def test_restricted_set_makes_a_program_unknown_and_deferred(fs):
    script = "sed -i s/red/blue/ /etc/conf\necho done\n"
    full = run(fs, script, default_models())
    assert full.status == 0 and not full.deferred_commands
    assert fs.read_bytes("/etc/conf") == b"colour=blue\n"

    restricted = default_models().without("sed")
    assert "sed" not in restricted and "cat" in restricted
    r = run(fs, "sed -i s/blue/green/ /etc/conf\necho done\n", restricted)
    assert r.status == 0 and not r.deferred_whole and r.stdout == b"done\n"
    (d,) = r.deferred_commands
    assert d.argv[0] == "sed" and d.reason == "no model for sed"
    assert fs.read_bytes("/etc/conf") == b"colour=blue\n"  # nothing ran

    only_cat = default_models().only("cat", "no-such-program")
    assert set(only_cat) == {"cat"}


def test_injected_model_is_called(fs):
    calls = []

    def probe(inv):
        calls.append((list(inv.argv), inv.cwd, inv.env.get("X")))
        inv.out("probed " + " ".join(inv.argv[1:]) + "\n")
        return 3

    models = default_models().extended({"probe": probe})
    r = run(fs, "cd /tmp\nX=1 probe a 'b c' || echo status=$?\n", models)
    assert calls == [(["probe", "a", "b c"], "/tmp", "1")]
    assert r.stdout == b"probed a b c\nstatus=3\n" and not r.deferred_commands
    kinds = [(e.argv[0], e.classification) for e in r.record.entries]
    assert ("probe", SIMULATED) in kinds
    # the set it was extended from is unchanged
    assert "probe" not in default_models()


def test_a_model_set_is_a_value():
    base = default_models()
    with pytest.raises(TypeError):
        base["probe"] = lambda inv: 0  # no item assignment: change means a new set
    smaller = base.without("rm")
    assert "rm" in base and "rm" not in smaller and len(smaller) == len(base) - 1
    assert isinstance(ModelSet(), ModelSet) and len(ModelSet()) == 0


def test_two_interpreters_with_different_sets_do_not_affect_each_other(fs):
    def one(inv):
        inv.out("one\n")
        return 0

    def two(inv):
        inv.out("two\n")
        return 0

    set_one = ModelSet({"probe": one})
    set_two = default_models().extended({"probe": two})
    assert run(fs, "probe\n", set_one).stdout == b"one\n"
    assert run(fs, "probe\n", set_two).stdout == b"two\n"
    assert run(fs, "probe\n", set_one).stdout == b"one\n"

    # an interpreter started from inside a model of another one, with its own set: each
    # keeps its own models before, during and after
    def outer(inv):
        inner = run_script(inv.fs, "probe\nsed -n 1p /etc/conf >/dev/null\n", [], models=set_two)
        inv.out(b"inner:" + inner.stdout)
        assert not inner.deferred_commands  # set_two has sed
        return 0

    set_outer = ModelSet({"probe": one, "outer": outer})
    fs.write_bytes("/usr/bin/outer", b"\x7fELF\x02\x01\x01", 0o755)
    r = run(fs, "probe\nouter\nprobe\nsed s/a/b/ /etc/conf\n", set_outer)
    assert r.stdout == b"one\ninner:two\none\n"
    (d,) = r.deferred_commands  # set_outer has no sed: the inner run's set did not leak out
    assert d.argv[0] == "sed" and d.reason == "no model for sed"


def test_children_inherit_the_set(fs):
    restricted = default_models().without("sed")
    # a child shell (sh -c) is atomic: its deferred sed defers the whole child invocation
    r = run(fs, "sh -c 'sed -i s/red/x/ /etc/conf'\n", restricted)
    (d,) = r.deferred_commands
    assert d.argv[:2] == ["sh", "-c"] and "sed" in d.reason
    assert fs.read_bytes("/etc/conf") == b"colour=red\n"
    r = run(fs, "sh -c 'sed -i s/red/x/ /etc/conf'\n", default_models())
    assert not r.deferred_commands and fs.read_bytes("/etc/conf") == b"colour=x\n"
    # a model running another program (xargs) looks it up in the same set
    r = run(fs, "echo /etc/conf | xargs sed -i s/x/y/\n", restricted)
    (d,) = r.deferred_commands
    assert d.argv == ["xargs", "sed", "-i", "s/x/y/"] and d.reason == "no model for sed"
    assert fs.read_bytes("/etc/conf") == b"colour=x\n"


def test_update_rc_d_finds_systemctl_through_the_set():
    fs = MemoryFS()
    for d in ("/etc/init.d", "/bin", "/lib/systemd/system"):
        fs.makedirs(d)
    fs.write_bytes("/bin/systemctl", b"\x7fELF\x02\x01\x01", 0o755)
    fs.write_bytes("/etc/init.d/foo", b"#!/bin/sh\n### BEGIN INIT INFO\n# Provides: foo\n"
                   b"# Default-Start: 2 3 4 5\n# Default-Stop: 0 1 6\n### END INIT INFO\n", 0o755)
    full = default_models()
    assert full["update-rc.d"](Invocation(argv=["update-rc.d", "foo", "defaults"], fs=fs, models=full)) == 0
    assert fs.readlink("/etc/rc2.d/S01foo") == "../init.d/foo"
    without = full.without("systemctl")
    with pytest.raises(Defer, match="no model for systemctl"):
        without["update-rc.d"](Invocation(argv=["update-rc.d", "foo", "disable"], fs=fs, models=without))
    inv = Invocation(argv=["update-rc.d", "foo", "disable"], fs=fs, models=full)
    assert full["update-rc.d"](inv) == 0, bytes(inv.stderr)
    assert fs.readlink("/etc/rc2.d/K01foo") == "../init.d/foo"


def test_empty_set_defers_every_program(fs):
    r = run(fs, "probe\n", ModelSet())
    assert [(e.argv[0], e.classification) for e in r.record.entries] == [("probe", DEFERRED)]


def test_a_model_is_imported_at_its_first_use_only():
    """The families name their models (``LazyModel``): building the default set, asking whether
    a program has a model, and listing the names import none of the model modules; looking a
    program up imports its module; every declared model resolves to a callable of its family."""
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from nuwa.script.commands import default_models\n"
        "m = default_models()\n"
        "names = sorted(m)\n"
        "assert 'find' in m and 'no-such-program' not in m\n"
        "mod = 'nuwa.script.commands.findutils.find'\n"
        "before = mod in sys.modules\n"
        "m['find']\n"
        "print(before, mod in sys.modules, len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", str(len(default_models()))]
    models = default_models()
    for family in FAMILIES:
        for name in family.MODELS:
            model = models[name]
            assert callable(model) and model.__module__.startswith(family.__name__ + "."), name
