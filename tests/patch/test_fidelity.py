"""apt's result: real ``apt-get upgrade`` in a chroot copy versus ``nuwa patch --upgrade`` on an
image of the same tree, judged by ``tools/fidelity.py`` -- zero unexplained differences.

Worlds (tests/patch/upgradeworld.py): the Debian 12 ``bookworm`` minbase tree with
bookworm-security, and the Debian 13 ``trixie`` minbase tree with trixie-updates and
trixie-security, each served from a local mirror on 127.0.0.1 that both the chroot's own apt
and Nuwa use. When the archive moves so that nothing is pending for a suite, the world says
which assumption failed (``dpkg_material.PlanError``) instead of passing on nothing.

The ``server`` world (issue 13) is bookworm's minbase tree plus nginx and ca-certificates: pam,
the CA bundle's trigger and a daemon whose postinst probes its port (nginx's ``ss -nlt 'sport =
80'``) must all be simulated -- the report lists no first-boot entry and no deferral.

The candidate is the qcow2 overlay Nuwa wrote, read with Nuwa's reader (whose ext4 engine is
judged by e2fsck and debugfs elsewhere); the overlay also passes ``qemu-img check`` and
``e2fsck -fn`` here.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers.cli import nuwa
from helpers.oracle import dpkg_material
from judges import e2fsck_clean, qemu_img_check, tool
from upgradeworld import World

import fidelity  # noqa: E402  (tools/ is on sys.path through helpers.oracle)

pytestmark = [pytest.mark.slow, pytest.mark.root, pytest.mark.judge]


# the server world's point: at least one of these is in today's pending set
SERVER_PACKAGES = ("nginx", "ca-certificates", "libpam-modules")


@pytest.fixture(scope="module", params=[("bookworm", "minbase"), ("trixie", "minbase"), ("bookworm", "server")],
                ids=["bookworm", "trixie", "bookworm-server"])
def world(request, tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot and mmdebstrap need root")
    suite, variant = request.param
    top = tmp_path_factory.mktemp(f"fidelity-{suite}-{variant}", numbered=True)
    w = World(suite, str(top), variant)
    w.top = top
    yield w
    w.close()


def _report(diffs) -> str:
    return "\n".join(d.line() for d in diffs)


def _no_first_boot(doc: dict, world) -> None:
    """The server world's own assertions: which of :data:`SERVER_PACKAGES` are pending today
    (one at least, or the world proves nothing about them), and no first-boot work at all."""
    pending = sorted(set(SERVER_PACKAGES) & set(world.unpacked()))
    if not pending:
        raise dpkg_material.PlanError(
            f"none of {', '.join(SERVER_PACKAGES)} is pending for the bookworm server world today (assumption: "
            f"bookworm-security holds a newer version of one of them); pending: {sorted(world.unpacked())}")
    print(f"server world: pending today among {SERVER_PACKAGES}: {pending}")
    ran = {s["package"].split(":")[0] for s in doc["scripts"]}
    assert ran & set(pending), f"no maintainer script of {pending} ran: {sorted(ran)}"
    whole = [f"{s['package']} {s['script']}: {s['reason']}" for s in doc["scripts"] if s["deferred_whole"]]
    deferred = [f"{s['package']} {s['script']}: line {d['line']}: {' '.join(d['argv'])}: {d['reason']}"
                for s in doc["scripts"] for d in s.get("deferred_commands", [])]
    assert not whole and not deferred, "deferred to first boot:\n" + "\n".join(whole + deferred)
    assert doc["counts"]["deferred"] == 0 and doc["counts"]["deferred_whole"] == 0, doc["counts"]
    assert doc["firstboot"] is None, f"first-boot entries: {doc['firstboot']}"


def test_upgrade_equals_real_apt(world):
    top = world.top
    out = top / "out.qcow2"
    r = nuwa("patch", world.img, "--upgrade", "--output", out, "--cache", top / "cache", "--json", check=0)
    assert r.returncode == 0, r.stderr[-2000:]
    doc = json.loads(r.stdout)
    assert {i["package"]: i["version"] for i in doc["plan"]["install"]} == world.unpacked()
    if world.variant == "server":
        _no_first_boot(doc, world)
    if world.suite == "trixie":  # trixie's apt verifies with sqv: no gpgv in the tree to fall back to
        assert os.path.exists(os.path.join(world.tree, "usr/bin/sqv"))
        assert not os.path.exists(os.path.join(world.tree, "usr/bin/gpgv"))
    ref = world.reference()  # its apt-get update verified Debian's InRelease files, or it fails
    diffs, left = fidelity.fidelity(ref, str(out))
    assert not left, f"unexplained differences ({len(left)} of {len(diffs)}):\n{_report(left)}"
    # the judge proves something: real apt did upgrade every package of its plan, and no
    # package's state differs (the allow list explains no dpkg status stanza)
    with open(os.path.join(ref, "var/lib/dpkg/status"), "rb") as f:
        _, status = fidelity.stanzas(f.read(), "reference status")
    versions = {key.split(":")[0]: fields["Version"] for key, fields in status.items()}
    assert all(versions[name] == version for name, version in world.unpacked().items())
    states = (fidelity.STATUS, fidelity.EXTENDED_STATES)
    assert not [d for d in diffs if d.path in states or d.path.split("#")[0] in states and "#" in d.path]
    # the image Nuwa wrote passes the real checkers too
    qemu_img_check(str(out))
    raw = str(top / "out.raw")
    subprocess.run([tool("qemu-img"), "convert", "-O", "raw", str(out), raw], check=True)
    e2fsck_clean(raw)
    os.unlink(raw)
