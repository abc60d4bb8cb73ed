"""emacs-package-install / emacs-package-remove (emacsen-common 3.0.5) against the real scripts.

A bookworm tree with emacsen-common, elpa-f and elpa-ht (and so elpa-s, elpa-dash and
dh-elpa-helper) installed by mmdebstrap is copied twice; each case restores emacsen-common's
directories, the flavors' ``/usr/share`` directories and the dpkg status file on both, applies
the same setup, then runs the same command line with real ``sh`` in a chroot of one copy and
with Nuwa's interpreter on the other (an overlay over it, committed), and compares status,
stdout, stderr and the restored paths. No Emacs is installed: flavors are state files, and
the dh-elpa helper skips ``xemacs*`` and ``emacs2[0-4]*`` flavors, removes byte-compiled
files for any flavor, and runs the flavor's ``emacs`` to byte-compile for others (deferred).
"""

from __future__ import annotations

import os

import pytest

from helpers.trees import brief_facts, tree_facts
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import run_script
from registry_harness import MODELS, ShellPair, write

ENV = {"LC_ALL": "C", "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root"}
FLAVORS = "var/lib/emacsen-common/state/flavor/installed"
STATE = "var/lib/emacsen-common/state/package/installed"
PKGS = "usr/lib/emacsen-common/packages"


class EmacsPair(ShellPair):
    PACKAGES = ("elpa-f", "elpa-ht", "emacsen-common")
    DIRS = ["var/lib/emacsen-common", "usr/lib/emacsen-common", "usr/share/emacs", "usr/share/xemacs21",
            "usr/share/emacs23", "usr/share/emacs-snapshot", "tmp"]
    FILES = ["var/lib/dpkg/status"]
    PREFIX = "umask 022; "


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return EmacsPair(str(tmp_path_factory.mktemp("emacsen")))


def flavors(*names):
    """A setup with these flavors installed (their state files)."""
    def setup(root):
        for n in names:
            write(root, f"{FLAVORS}/{n}", b"")
    return setup


def status_paragraph(name: str, depends: str = "", description: bytes = b"test package\n a long line\n") -> bytes:
    """A dpkg status paragraph for a made-up add-on package."""
    dep = f"Depends: {depends}\n" if depends else ""
    return (f"Package: {name}\nStatus: install ok installed\nPriority: optional\nSection: editors\n"
            f"Installed-Size: 1\nMaintainer: Test <test@example.org>\nArchitecture: all\nVersion: 1.0\n{dep}"
            ).encode() + b"Description: " + description + b"\n"


def add_on(root, name, depends="", compat=True, install=None, remove=None, mode=0o755, description=None):
    """A made-up add-on: status paragraph, compat file, install/remove scripts."""
    with open(os.path.join(root, "var/lib/dpkg/status"), "ab") as f:
        f.write(status_paragraph(name, depends, *([description] if description is not None else [])))
    if compat:
        write(root, f"{PKGS}/compat/{name}", b"0\n")
    if install is not None:
        write(root, f"{PKGS}/install/{name}", install, mode)
    if remove is not None:
        write(root, f"{PKGS}/remove/{name}", remove, mode)


LOGGER = b'#!/bin/sh\nset -e\necho "$0 called with $*"\nmkdir -p /tmp/log\necho "$*" >> /tmp/log/calls\n'


def test_postinst_emacsen_common_without_flavor(pair):
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst emacsen-common"])


def test_postinst_and_prerm_of_add_ons_without_flavor(pair):
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst elpa-f",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm elpa-ht",
                "/usr/lib/emacsen-common/emacs-package-install --preinst elpa-s",
                "/usr/lib/emacsen-common/emacs-package-install --postinst elpa-ht"])


def test_postinst_runs_dependencies_first_for_each_flavor(pair):
    # xemacs21 and emacs23 are skipped by dh-elpa's helper; names ending in ~ and dot files
    # are not flavors
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst elpa-f",
                "/usr/lib/emacsen-common/emacs-package-install --postinst elpa-ht"],
               setup=flavors("xemacs21", "emacs23", "emacs24~", ".emacs"))


def test_glob_order_of_flavors_folds_case(pair):
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst elpa-s",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm elpa-s"],
               setup=flavors("xemacs21", "XEmacs-b", "emacs20", "Emacs22", "emacs_", "emacs2"))


def test_prerm_removes_byte_compiled_files(pair):
    def setup(root):
        flavors("emacs", "xemacs21")(root)
        d = os.path.join(root, "usr/share/emacs/site-lisp/elpa/f-0.20.0")
        os.makedirs(d)
        write(root, "usr/share/emacs/site-lisp/elpa/f-0.20.0/f.elc", b"compiled\n")
        write(root, "usr/share/emacs/site-lisp/elpa/f-0.20.0/Install.log.gz", b"log\n")
        os.symlink("/usr/share/emacs/site-lisp/elpa-src/f-0.20.0/f.el", os.path.join(d, "f.el"))
    pair.check(["/usr/lib/emacsen-common/emacs-package-remove --prerm elpa-f"], setup=setup)


def test_emacsen_common_install_script_fails(pair):
    # the flavor's directory exists, its emacs does not: the script's link is made, then
    # `xemacs21` is not found and the script fails
    def setup(root):
        flavors("xemacs21")(root)
        os.makedirs(os.path.join(root, "usr/share/xemacs21/site-lisp"))
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst emacsen-common; echo status $?",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm emacsen-common"], setup=setup)


def test_usage_errors(pair):
    pair.check(["/usr/lib/emacsen-common/emacs-package-install; echo $?",
                "/usr/lib/emacsen-common/emacs-package-install --bogus elpa-f; echo $?",
                "/usr/lib/emacsen-common/emacs-package-install a b c; echo $?",
                "/usr/lib/emacsen-common/emacs-package-remove --postinst elpa-f; echo $?",
                "/usr/lib/emacsen-common/emacs-package-remove; echo $?"])


def test_dies(pair):
    # the state file a directory (unlink: EISDIR), the flavor directory missing (chdir: ENOENT)
    def setup(root):
        os.unlink(os.path.join(root, STATE, "elpa-s"))
        os.makedirs(os.path.join(root, STATE, "elpa-s", "x"))
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --preinst elpa-s; echo $?",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm elpa-s; echo $?",
                f"rm -r /{FLAVORS}; /usr/lib/emacsen-common/emacs-package-install --postinst elpa-f; echo $?",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm elpa-f; echo $?"], setup=setup)


def test_made_up_add_ons_old_and_new_style(pair):
    def setup(root):
        flavors("xemacs21", "emacs23")(root)
        add_on(root, "test-d", install=LOGGER, remove=LOGGER)
        add_on(root, "test-c", depends="test-d (>= 1), libc6", install=LOGGER, remove=LOGGER)
        add_on(root, "test-b", depends="test-c", install=LOGGER, remove=LOGGER)
        add_on(root, "test-a", depends="test-b, test-c | foo, elpa-s", install=LOGGER, remove=LOGGER)
        add_on(root, "test-old", depends="test-a", compat=False, install=LOGGER, remove=LOGGER)
        add_on(root, "test-noexec", install=LOGGER, mode=0o644)
        add_on(root, "test-nocompat", compat=False, install=LOGGER)
        for p in ("test-a", "test-b", "test-c", "test-d"):
            write(root, f"{STATE}/{p}", b"")
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst test-a",
                "/usr/lib/emacsen-common/emacs-package-install test-old",
                "/usr/lib/emacsen-common/emacs-package-remove test-old",
                "/usr/lib/emacsen-common/emacs-package-install --postinst test-noexec; echo $?",
                "/usr/lib/emacsen-common/emacs-package-install --postinst test-nocompat",
                "/usr/lib/emacsen-common/emacs-package-install test-d",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm test-b"], setup=setup)


def test_a_failing_add_on_script(pair):
    def setup(root):
        flavors("xemacs21")(root)
        add_on(root, "test-fail", install=b"#!/bin/sh\necho failing for $1\nexit 3\n",
               remove=b"#!/bin/sh\necho failing for $1 >&2\nexit 4\n")
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst test-fail; echo $?",
                "/usr/lib/emacsen-common/emacs-package-remove --prerm test-fail; echo $?"], setup=setup)


def test_flavor_without_its_emacs(pair):
    # the flavor's state file is there, its program is not: dh-elpa's helper prints the log
    pair.check(["/usr/lib/emacsen-common/emacs-package-install --postinst elpa-s; echo $?"], setup=flavors("emacs"))


def test_byte_compiling_defers_and_leaves_the_image_as_it_was(pair):
    def setup(root):
        flavors("emacs", "xemacs21")(root)
        write(root, "usr/bin/emacs", b"\x7fELF\x02\x01\x01\x00", 0o755)  # never runs: no model, deferred
    pair.reset(setup)
    before = tree_facts(pair.model, brief_facts, subs=pair.DIRS)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(fs, "/usr/lib/emacsen-common/emacs-package-install --postinst elpa-f\n", env=dict(ENV),
                     models=MODELS, is_path=False)
    fs.commit()
    assert [d.argv[:3] for d in res.deferred_commands] == [
        ["/usr/lib/emacsen-common/emacs-package-install", "--postinst", "elpa-f"]]
    assert "emacs" in res.deferred_commands[0].reason, res.deferred_commands[0].reason
    assert res.stdout == b""
    assert tree_facts(pair.model, brief_facts, subs=pair.DIRS) == before
    os.unlink(os.path.join(pair.model, "usr/bin/emacs"))


def test_umask_other_than_022_defers(pair):
    pair.reset()
    fs = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(fs, "umask 077; /usr/lib/emacsen-common/emacs-package-install --postinst elpa-f\n",
                     env=dict(ENV), models=MODELS, is_path=False)
    assert len(res.deferred_commands) == 1 and "umask" in res.deferred_commands[0].reason


def test_usage_under_another_umask(pair):
    # nothing is started: the umask does not matter
    pair.check(["umask 077; /usr/lib/emacsen-common/emacs-package-install; echo $?",
                "umask 002; /usr/lib/emacsen-common/emacs-package-remove a b; echo $?"])


# ---- emacs-install / emacs-remove FLAVOR: an Emacs flavor's postinst and prerm ----------------
def only_emacsen_common(*names):
    """A setup where emacsen-common is the only ready add-on (the elpa packages' state files
    gone), with these flavors installed."""
    def setup(root):
        for p in os.listdir(os.path.join(root, STATE)):
            if p != "emacsen-common":
                os.unlink(os.path.join(root, STATE, p))
        flavors(*names)(root)
    return setup


def test_flavor_remove_with_emacsen_common(pair):
    # emacs-nox's prerm: emacsen-common's remove script drops its files from the flavor's
    # site-lisp, then the flavor's state file goes; once more: nothing left to unlink
    def setup(root):
        only_emacsen_common("emacs", "xemacs21")(root)
        os.makedirs(os.path.join(root, "usr/share/emacs/site-lisp"), exist_ok=True)
        os.symlink("../../emacsen-common/debian-startup.el",
                   os.path.join(root, "usr/share/emacs/site-lisp/debian-startup.el"))
        write(root, "usr/share/emacs/site-lisp/debian-startup.elc", b"compiled\n")
    pair.check(["/usr/lib/emacsen-common/emacs-remove emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove --prerm emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove --prerm xemacs21; echo $?"], setup=setup)


def test_flavor_install_runs_the_add_ons_script(pair):
    # the state file is made first; emacsen-common's install script links its startup file,
    # then its `xemacs21` is not found: the script fails, so does emacs-install
    def setup(root):
        only_emacsen_common("emacs23")(root)
        os.makedirs(os.path.join(root, "usr/share/xemacs21/site-lisp"), exist_ok=True)
    pair.check(["/usr/lib/emacsen-common/emacs-install xemacs21; echo $?",
                "/usr/lib/emacsen-common/emacs-install --preinst xemacs21; echo $?",
                "/usr/lib/emacsen-common/emacs-install --preinst xemacs21; echo $?",
                "/usr/lib/emacsen-common/emacs-install --postinst nothing-here; echo $?"], setup=setup)


def test_flavor_install_with_no_ready_add_on(pair):
    def setup(root):
        only_emacsen_common()(root)
        os.unlink(os.path.join(root, STATE, "emacsen-common"))
    pair.check(["/usr/lib/emacsen-common/emacs-install emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove emacs; echo $?"], setup=setup)


def test_flavor_usage_and_dies(pair):
    # usage lines; the flavor's state file a directory (EISDIR); no flavor directory (chdir)
    def setup(root):
        only_emacsen_common()(root)
        os.makedirs(os.path.join(root, FLAVORS, "emacs", "x"))
    pair.check(["/usr/lib/emacsen-common/emacs-install; echo $?",
                "/usr/lib/emacsen-common/emacs-install --prerm emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove --postinst emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove a b c; echo $?",
                "/usr/lib/emacsen-common/emacs-install --preinst emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-remove emacs; echo $?",
                f"rm -r /{FLAVORS}; /usr/lib/emacsen-common/emacs-remove emacs; echo $?",
                "/usr/lib/emacsen-common/emacs-install emacs; echo $?"], setup=setup)


def test_flavor_with_independent_add_ons(pair):
    # three ready add-ons, none depending on another: every hash order gives the same run
    def setup(root):
        only_emacsen_common("xemacs21")(root)
        add_on(root, "test-b", depends="libc6", install=LOGGER, remove=LOGGER)
        add_on(root, "test-old", compat=False, install=LOGGER, remove=LOGGER)
        write(root, f"{STATE}/test-b", b"")
    pair.check(["/usr/lib/emacsen-common/emacs-remove --prerm emacs23; echo $?",
                "/usr/lib/emacsen-common/emacs-remove xemacs21; echo $?"], setup=setup)


def test_flavor_order_left_to_perls_hash_defers(pair):
    # the elpa packages depend on each other and emacsen-common has no Depends line: the
    # order depends on the hash order of the run, so the model defers, leaving the image as it was
    pair.reset(flavors("emacs23"))
    before = tree_facts(pair.model, brief_facts, subs=pair.DIRS)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(fs, "umask 022; /usr/lib/emacsen-common/emacs-remove emacs23\n", env=dict(ENV), models=MODELS,
                     is_path=False)
    fs.commit()
    assert len(res.deferred_commands) == 1 and "hash order" in res.deferred_commands[0].reason
    assert tree_facts(pair.model, brief_facts, subs=pair.DIRS) == before


def test_flavor_unknown_text_defers(pair):
    def setup(root):
        with open(os.path.join(root, "usr/lib/emacsen-common/emacs-remove"), "ab") as f:
            f.write(b"# changed\n")
    pair.reset(setup)
    fs = Overlay(HostDirFS(pair.model, writable=True))
    res = run_script(fs, "/usr/lib/emacsen-common/emacs-remove emacs\n", env=dict(ENV), models=MODELS, is_path=False)
    assert len(res.deferred_commands) == 1 and "unknown SHA-256" in res.deferred_commands[0].reason
