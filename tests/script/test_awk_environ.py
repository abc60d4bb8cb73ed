"""mawk's ENVIRON against the real mawk (Debian 12's awk) in a chroot of a bookworm tree, run by
real ``sh`` on one copy and Nuwa's interpreter on the other: exported variables, strnum
comparisons, assignment and deletion, an unset name; ``for (k in ENVIRON)`` defers (the order
is the calling shell's). exim4-config's postinst rewrites update-exim4.conf.conf this way."""

from __future__ import annotations

import os

import pytest

from registry_harness import shell_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return shell_pair(tmp_path_factory, "awkenv", ["srv"])


def conf(root):
    os.makedirs(os.path.join(root, "srv"), exist_ok=True)
    with open(os.path.join(root, "srv/u.conf"), "w") as f:
        f.write("# comment\ndc_eximconfig_configtype='local'\ndc_other_hostnames=''\n  dc_relay_nets='x'\nkeep=1\n")


EXIM = ("""dc_eximconfig_configtype='internet site'; dc_other_hostnames='a.example;b\\N'; dc_relay_nets=;
dc_directives="dc_eximconfig_configtype dc_other_hostnames dc_relay_nets"; export dc_directives ${dc_directives};
awk 'BEGIN { split(ENVIRON["dc_directives"], directives, "[ \\t]"); }
{ written = 0; for (i in directives) { regex = "^[ \\t]*" directives[i] "=";
  if (($0 ~ regex) && (!written)) { print directives[i] "=\\x27" ENVIRON[directives[i]] "\\x27"; written = 1; break; } }
  if (!written) print $0; }' < /srv/u.conf > /srv/u.conf.tmp && mv /srv/u.conf.tmp /srv/u.conf; cat /srv/u.conf""")


@pytest.mark.parametrize("cmd", [
    EXIM,
    "X=10 awk 'BEGIN { print ENVIRON[\"X\"], (ENVIRON[\"X\"] > 9), (ENVIRON[\"X\"] < \"9\") }'",
    "export Y=' 3 '; awk 'BEGIN { print \"[\" ENVIRON[\"Y\"] \"]\", ENVIRON[\"Y\"] == 3, length(ENVIRON[\"NOPE\"]) }'",
    "Z=1 awk 'BEGIN { ENVIRON[\"Z\"] = 5; delete ENVIRON[\"PATH\"]; print ENVIRON[\"Z\"], (\"PATH\" in ENVIRON), "
    "(\"Z\" in ENVIRON), (\"HOME\" in ENVIRON) }'",
    "unset HOME; awk 'BEGIN { print (\"HOME\" in ENVIRON) }'",
    "E= awk 'BEGIN { print (\"E\" in ENVIRON), ENVIRON[\"E\"] == 0, ENVIRON[\"E\"] == \"\" }'",
    "awk 'BEGIN { print \"\\x414\", \"\\x4|\", \"\\xg\", \"[\\x]\", \"\\x7e\\x27\\X41\" }' | od -c",
])
def test_environ(pair, cmd):
    pair.check([cmd], setup=conf)


def test_for_in_environ_defers(pair):
    pair.reset(conf)
    pair.run_model("awk 'BEGIN { for (k in ENVIRON) n++; print n }'")
    assert pair.last.deferred_commands and "ENVIRON" in pair.last.deferred_commands[0].reason
