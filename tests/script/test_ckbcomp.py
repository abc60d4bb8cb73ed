"""ckbcomp (console-setup 1.221) against the real one in a chroot of a bookworm tree with
console-setup (keyboard-configuration, xkb-data, console-setup-linux, kbd).

Each case runs command lines with real ``sh`` in a chroot of one copy and with Nuwa's
interpreter on the other (nothing may be deferred) and compares status, stdout and stderr,
then ``/etc/console-setup``, ``/etc/default`` and ``/tmp`` of both trees path by path:
keymaps of many layouts, variants, options, models and legacy charmaps, and ``setupcon
--save-only`` (console-setup's postinst) writing its ``cached_*`` files, gzip included.
The cases ckbcomp dies on are deferred by the model, with the reason. The combining marks
Perl's ``\\p{IsAlpha}`` counts are checked against Perl itself over the whole plane.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands.console.keymap import perl_is_alpha
from nuwa.script.interp import run_script
from registry_harness import ENV, MODELS, ShellPair, write

pytestmark = [pytest.mark.root, pytest.mark.judge]


class CkbPair(ShellPair):
    PACKAGES, DIRS, FILES, TIMEOUT = ("console-setup",), ["etc/console-setup", "etc/default", "tmp"], [], 300


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return CkbPair(str(tmp_path_factory.mktemp("ckbcomp")))


def _ckb(*args: str, charmap: str = "") -> str:
    """A ckbcomp command line as setupcon writes it, its output summarised (the keymaps are
    100-200 KB): status, size and digest of stdout, and stderr as it is."""
    cm = f"-charmap {charmap} " if charmap else ""
    quoted = " ".join(f"'{a}'" for a in args)
    return f"ckbcomp -backspace del {cm}{quoted} >/tmp/k; echo $?; wc -c </tmp/k; md5sum </tmp/k"


CASES = [
    # the default configuration of nearly every image, and setupcon's other backspace
    [_ckb("-model", "pc105", "us", "", ""), "ckbcomp -backspace bs -model pc105 us '' '' | head -c 3000"],
    [_ckb("-model", "pc105", "de", "nodeadkeys", ""), _ckb("-model", "pc105", "fr", "", ""),
     _ckb("-model", "pc105", "gb", "", "")],
    [_ckb("-model", "pc105", "ru", "", "grp:alt_shift_toggle"),
     _ckb("-model", "pc105", "us,ru", ",", "grp:alt_shift_toggle,grp_led:scroll")],
    [_ckb("-model", "pc105", "us", "intl", ""), _ckb("-model", "pc105", "us", "dvorak", "compose:ralt,ctrl:swapcaps"),
     _ckb("-model", "pc104", "us", "", "ctrl:nocaps,lv3:ralt_switch,terminate:ctrl_alt_bksp")],
    # non-Latin scripts: Unicode letters, combining marks, the Greek patch, two groups
    [_ckb("-model", "pc105", "gr", "", ""), _ckb("-model", "pc105", "ara", "", ""),
     _ckb("-model", "pc105", "th", "", ""), _ckb("-model", "pc105", "in", "tel", ""),
     _ckb("-model", "pc105", "il", "", ""), _ckb("-model", "pc105", "gr,us", ",", "grp:alt_shift_toggle")],
    # keysyms ckbcomp does not know (its warnings), keypad and Japanese/Brazilian keys
    [_ckb("-model", "pc105", "lk", "", ""), _ckb("-model", "jp106", "jp", "", ""),
     _ckb("-model", "abnt2", "br", "", ""), _ckb("-model", "pc105", "us", "nosuchvariant", ""),
     _ckb("-model", "pc105", "fr", "", "keypad:pointerkeys,numpad:microsoft")],
    # other models: Apple and evdev key codes, Sun's on the AT table
    [_ckb("-model", "macintosh", "us", "", ""), _ckb("-model", "evdev", "de", "nodeadkeys", ""),
     _ckb("-model", "sun6", "us", "", ""), _ckb("-model", "chromebook", "us", "", "")],
    # legacy charmaps: the ACM tables, compose.*.inc
    [_ckb("-model", "pc105", "de", "", "", charmap="ISO-8859-15"),
     _ckb("-model", "pc105", "ru", "", "", charmap="KOI8-R"),
     _ckb("-model", "pc105", "ru", "", "", charmap="CP1251"),
     _ckb("-model", "pc105", "gr", "", "", charmap="ISO-8859-7"),
     _ckb("-model", "pc105", "vn", "", "", charmap="VISCII")],
    # the other argument forms
    ["ckbcomp -compact -model pc105 us | md5sum", "ckbcomp -compact -model pc105 ru,us , grp:alt_shift_toggle | md5sum",
     "ckbcomp -layout de -variant neo -option ctrl:nocaps | md5sum", "ckbcomp us | md5sum; ckbcomp fr bepo | md5sum",
     "ckbcomp -rules evdev -model pc105 us | md5sum", "ckbcomp -keycodes evdev -symbols pc+us | md5sum",
     "ckbcomp -model pc105 -ccharmap ISO-8859-1 us | md5sum", "ckbcomp -I/nonexistent -model pc105 'us, de' | md5sum"],
]


@pytest.mark.parametrize("cmds", CASES, ids=[str(i) for i in range(len(CASES))])
def test_ckbcomp(pair, cmds):
    pair.check(cmds)


def _keyboard(layout: str, variant: str = "", options: str = "", charmap: str = "UTF-8", model: str = "pc105"):
    def setup(root: str) -> None:
        write(root, "etc/default/keyboard", f'XKBMODEL="{model}"\nXKBLAYOUT="{layout}"\nXKBVARIANT="{variant}"\n'
              f'XKBOPTIONS="{options}"\nBACKSPACE="guess"\n'.encode())
        text = open(os.path.join(root, "etc/default/console-setup"), "rb").read()
        text = text.replace(b'CHARMAP="UTF-8"', f'CHARMAP="{charmap}"'.encode())
        write(root, "etc/default/console-setup", text)
        for name in os.listdir(os.path.join(root, "etc/console-setup")):
            if name.startswith("cached_"):
                os.unlink(os.path.join(root, "etc/console-setup", name))
    return setup


@pytest.mark.parametrize("config", [("us",), ("de", "nodeadkeys"), ("ru,us", ",", "grp:alt_shift_toggle"),
                                    ("fr", "", "", "ISO-8859-15"), ("gb", "", "ctrl:nocaps", "UTF-8", "pc104")],
                         ids=lambda c: "-".join(x for x in c if x) or "default")
def test_setupcon_save_only(pair, config):
    """console-setup's postinst: ``setupcon --save-only`` writes the same cached_* files
    (the keymap through ``gzip -9n``, the font, the setup scripts)."""
    pair.check(["setupcon --save-only; echo $?; ls /etc/console-setup | grep cached_",
                "zcat /etc/console-setup/cached_*.kmap.gz | md5sum"], setup=_keyboard(*config))


#: (command, the model's reason, whether the real ckbcomp fails)
DEFERRED = [
    ("ckbcomp -bogus", "unknown option -bogus", True),
    ("ckbcomp -charmap NOPE us", "no ACM for NOPE", True),
    ("ckbcomp -model pc105 zz", 'no file "symbols/zz"', True),
    ("ckbcomp -model pc105 -model pc104 us", "-model given twice", True),
    ("ckbcomp -model amiga us", "amiga key codes", False),
    ("ckbcomp -freebsd us", "-freebsd", False),
    ("ckbcomp -model", "-model without its value", True),
]


@pytest.mark.parametrize("cmd,reason,dies", DEFERRED)
def test_deferred(pair, cmd, reason, dies):
    """What ckbcomp dies on (its status then depends on Perl's ``$!``) or the model does not
    produce is deferred with the reason; the real program fails or runs as noted."""
    pair.reset()
    res = run_script(Overlay(HostDirFS(pair.model)), cmd, env=dict(ENV), models=MODELS, is_path=False)
    assert res.deferred_commands and reason in str(res.deferred_commands), res.deferred_commands
    status = subprocess.run(["chroot", pair.real, "/bin/sh", "-c", cmd + " >/dev/null 2>&1"], env=ENV,
                            timeout=120).returncode
    assert (status != 0) == dies


def test_include_loop_defers(pair):
    """A symbols file that includes itself (hostile or broken XKB data) makes the real ckbcomp
    recurse until Perl runs out of memory, so it is not run here; the model stops at its
    nesting limit and defers, naming the loop, with nothing written."""
    def loop(root):
        write(root, "etc/console-setup/ckb/symbols/loop",
              b'default partial alphanumeric_keys\nxkb_symbols "basic" {\n    include "loop(basic)"\n};\n')
    pair.reset(loop)
    res = run_script(Overlay(HostDirFS(pair.model)), "ckbcomp -model pc105 loop >/tmp/k", env=dict(ENV),
                     models=MODELS, is_path=False)
    assert res.deferred_commands and "a loop" in str(res.deferred_commands), res.deferred_commands


def test_alphabetic_marks(pair):
    """Perl 5.36's ``\\p{IsAlpha}`` for every code point of the BMP but the surrogates, as
    ckbcomp asks it, equals the model's answer."""
    perl = ('for my $u (0..0xFFFF) { next if $u >= 0xD800 && $u <= 0xDFFF;'
            ' print "$u\\n" if pack("U", $u) =~ /\\p{IsAlpha}/ }')
    out = subprocess.run(["chroot", pair.real, "perl", "-e", perl], env=ENV, capture_output=True, check=True,
                         timeout=120).stdout
    alpha = {int(x) for x in out.split()}
    assert len(alpha) > 40000
    wrong = [u for u in range(0x10000) if not 0xD800 <= u <= 0xDFFF and perl_is_alpha(u) != (u in alpha)]
    assert not wrong, [hex(u) for u in wrong[:20]]


@pytest.mark.parametrize("config", [("us",), ("de", "nodeadkeys", "", "ISO-8859-15")],
                         ids=lambda c: "-".join(x for x in c if x))
def test_console_setup_postinst(tmp_path, config):
    """console-setup's whole postinst (``configure 1.221``: debconf, the configuration file,
    ``setupcon --save-only``, then ``setupcon``) run by real dpkg's way in a chroot and by the
    simulator: same output and status, same debconf databases, every path of the trees the
    same, the ``cached_*`` files remade (removed first, the keyboard configuration changed)."""
    from debconf_oracle import debconf_records, diff_trees, environment, offline_pair, run_nuwa, run_real_offline
    a, b = offline_pair(tmp_path, "console-setup")
    for root in (a, b):
        _keyboard(*config)(root)
    postinst = ["/var/lib/dpkg/info/console-setup.postinst", "configure", "1.221"]
    env = environment("postinst", "console-setup")
    real = run_real_offline(a, postinst, env)
    r = run_nuwa(b, postinst, env)
    assert not r.deferred_whole and not r.deferred_commands, (r.reason, r.deferred_commands)
    assert (r.status, r.stdout, r.stderr) == real
    assert debconf_records(b) == debconf_records(a)
    assert diff_trees(a, b, 0) == []
    cached = sorted(n for n in os.listdir(os.path.join(b, "etc/console-setup")) if n.startswith("cached_"))
    assert any(n.endswith(".kmap.gz") for n in cached), cached
