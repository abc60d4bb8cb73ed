"""getent passwd/group/shadow/gshadow with ``sss`` in nsswitch.conf, against the real getent.

A bookworm minbase tree with libnss-sss (the client module sssd-common's postinst meets: its
postinst puts ``sss`` on the passwd, group, shadow... lines) is copied twice; in the chroot
sssd is not running, as on a dormant image, so the real libnss_sss answers UNAVAIL and glibc
goes on by the line's actions. Each case writes the same nsswitch.conf on both copies, then
runs the same command lines with real ``sh`` in a chroot of one copy and Nuwa's interpreter on
the other: status, stdout and stderr of every line must be identical, and ``/etc`` after.
A memory cache of sssd left in the image, or a network source other than sss, defers.
"""

from __future__ import annotations

import os

import pytest

from registry_harness import ShellPair, write


class SssPair(ShellPair):
    PACKAGES = ("libnss-sss",)
    DIRS = ["etc", "var/lib/sss"]
    FILES: list[str] = []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return SssPair(str(tmp_path_factory.mktemp("getent-sss")))


#: every key the cases ask: in the files, a user only in /etc/group, and nowhere
LOOKUPS = [f"getent {db} {key}; echo rc=$?" for db in ("passwd", "group", "shadow", "gshadow")
           for key in ("root", "sssd", "0", "nobody", "nogroup", "65534", "daemon root", "nosuchuser root")]
ENUM = [f"getent {db} | md5sum; echo rc=$?" for db in ("passwd", "group", "shadow", "gshadow")]


def _nsswitch(lines: str):
    def setup(root):
        write(root, "etc/nsswitch.conf", lines.encode())
    return setup


@pytest.mark.parametrize("line", [
    "files sss",                      # what libnss-sss's postinst writes: UNAVAIL goes on, nothing more
    "sss files",                      # sss first: UNAVAIL continues to files
    "files [NOTFOUND=return] sss",
    "sss [UNAVAIL=return] files",     # the dormant sss ends the walk: nothing is found
    "sss [!UNAVAIL=return] files",
    "files systemd sss",
    "sss",                            # sss alone: nothing found, nothing listed
    "files [SUCCESS=return UNAVAIL=return] sss [UNAVAIL=continue]",
])
def test_sss_is_unavailable_on_a_dormant_image(pair, line):
    text = "".join(f"{db}: {line}\n" for db in ("passwd", "group", "shadow", "gshadow"))
    pair.check(LOOKUPS + ENUM, setup=_nsswitch("# cases\n" + text + "hosts: files\n"))


def test_sssd_common_postinst_lookup(pair):
    """The line the corpus meets: ``if ! getent passwd sssd > $OUT`` with libnss-sss's
    nsswitch.conf (as its postinst leaves it), the user absent and then present."""
    line = "files systemd sss"
    text = f"passwd: {line}\ngroup: {line}\nshadow: files sss\ngshadow: files\n"
    steps = ["if ! getent passwd sssd >/dev/null; then echo absent; fi",
             "echo 'sssd:x:999:999::/var/lib/sss:/usr/sbin/nologin' >> /etc/passwd",
             "getent passwd sssd; echo rc=$?", "getent passwd 999; echo rc=$?"]
    pair.check(steps, setup=_nsswitch(text))


def test_memory_cache_and_network_sources_defer(pair):
    """sssd's memory cache in the image would answer before the socket; ldap needs nslcd
    (another daemon, another answer): both are deferred, never guessed."""
    def setup(root):
        write(root, "etc/nsswitch.conf", b"passwd: files sss\ngroup: files ldap\n")
        write(root, "var/lib/sss/mc/passwd", b"\0" * 64)
    pair.reset(setup)
    pair.run_model("getent passwd nosuchuser")
    assert "memory cache" in pair.last.reason + "".join(d.reason for d in pair.last.deferred_commands)
    pair.run_model("getent group nosuchgroup")
    assert "ldap" in pair.last.reason + "".join(d.reason for d in pair.last.deferred_commands)
    # a key the files hold is answered before ldap is reached
    status, out, _ = pair.run_model("getent group root")
    assert (status, out) == (0, b"root:x:0:\n") and not pair.last.deferred_commands
