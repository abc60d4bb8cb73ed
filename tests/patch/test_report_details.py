"""The per-package facts of a patch report and its reboot answer (nuwa.patch.report).

Real .debs built by ``dpkg-deb`` on the default test image (a dry run: nothing written):
CVE ids from the unpacked file's ``changelog.Debian.gz`` entries newer than the installed
source version (the same reader as ``nuwa scan --cves``), read through a sibling's .deb when
the doc directory is a link; the scripts each package ran and their command counts; and
``/run/reboot-required`` as a postinst writes it (the way Ubuntu's
``notify-reboot-required`` does), versus the package rule for images without that helper.
"""

from __future__ import annotations

import gzip
import os

import pytest

import nuwa
from helpers.debtools import build_deb
from helpers.paths import DEFAULT_IMAGE as IMAGE
from nuwa.patch.report import reboot_needed

CHANGELOG = """nuwa-cve (1.2-1) bookworm-security; urgency=high

  * Fix CVE-2026-0003 and CVE-2026-10001.

 -- T <t@example.org>  Sat, 05 Dec 2026 00:00:00 +0000

nuwa-cve (1.1-1) bookworm; urgency=medium

  * Fix CVE-2025-0002 (already in the installed version's predecessor: not reported).

 -- T <t@example.org>  Fri, 04 Dec 2026 00:00:00 +0000
"""

NOTIFY_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ]; then
    # what /usr/share/update-notifier/notify-reboot-required does on Ubuntu
    touch /var/run/reboot-required
    echo nuwa-kernelish >> /var/run/reboot-required.pkgs
fi
"""


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    if not os.path.exists(IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    d = str(tmp_path_factory.mktemp("debs"))
    log = gzip.compress(CHANGELOG.encode())
    cve = build_deb(d, "nuwa-cve", "1.2-1", {"/usr/share/doc/nuwa-cve/changelog.Debian.gz": log},
                    extra="Depends: nuwa-cve-lib (= 1.2-1)\n")
    lib = build_deb(d, "nuwa-cve-lib", "1.2-1", {"/usr/share/doc/nuwa-cve-lib": ("link", "nuwa-cve")},
                    extra="Source: nuwa-cve\n")
    notify = build_deb(d, "nuwa-kernelish", "1.0", {"/usr/share/doc/nuwa-kernelish/x": b"x"},
                       scripts={"postinst": NOTIFY_POSTINST})
    return [notify, lib, cve]


@pytest.fixture(scope="module")
def report(debs):
    with nuwa.open(IMAGE) as image:
        return image.patch(debs=debs, dry_run=True).to_json()


def test_cves_from_the_changelog_and_a_siblings_changelog(report):
    pk = {p["package"]: p for p in report["packages"]}
    # new packages: every entry up to the new version counts (nothing was installed before)
    assert pk["nuwa-cve"]["cves"] == ["CVE-2025-0002", "CVE-2026-0003", "CVE-2026-10001"]
    assert pk["nuwa-cve-lib"]["cves"] == pk["nuwa-cve"]["cves"] and pk["nuwa-cve-lib"]["source"] == "nuwa-cve"
    assert pk["nuwa-kernelish"]["cves"] == [] and "no changelog" in pk["nuwa-kernelish"]["changelog_note"]


def test_scripts_and_command_counts_per_package(report):
    pk = {p["package"]: p for p in report["packages"]}
    assert pk["nuwa-kernelish"]["scripts"] == ["postinst configure"]
    assert pk["nuwa-kernelish"]["commands"]["simulated"] >= 2 and pk["nuwa-kernelish"]["commands"]["deferred"] == 0
    assert pk["nuwa-cve"]["scripts"] == []


def test_reboot_from_what_the_scripts_wrote(report):
    assert report["reboot"]["required"] is True
    assert report["reboot"]["packages"] == ["nuwa-kernelish"]
    assert "wrote /run/reboot-required" in report["reboot"]["reasons"][0] or \
        "wrote /var/run/reboot-required" in report["reboot"]["reasons"][0]


def test_a_report_without_its_changes_says_the_same_and_writes_the_same(debs, report, tmp_path):
    """``changes=False`` (``nuwa patch --quiet`` without --json or --report): the document's
    ``changes`` is None, everything else is what the full report says (``reboot`` included,
    answered from the reboot files' own entries), and the image written is the same."""
    assert report["changes"] and any(c["path"] == "/run/reboot-required" for c in report["changes"])
    with nuwa.open(IMAGE) as image:
        short = image.patch(debs=debs, dry_run=True, changes=False)
    doc = short.to_json()
    assert doc["changes"] is None and doc["reboot"] == report["reboot"]
    assert {k: v for k, v in doc.items() if k != "changes"} == {k: v for k, v in report.items() if k != "changes"}
    assert short.summary_lines()[-1] == "dry run: nothing written"
    outs = {}
    for listed in (True, False):
        outs[listed] = str(tmp_path / f"out-{listed}.qcow2")
        with nuwa.open(IMAGE) as image:
            got = image.patch(debs=debs, output=outs[listed], changes=listed).to_json()
        assert (got["changes"] is None) is (not listed) and got["reboot"] == report["reboot"]
    # the times are the clock's (two runs differ), in dpkg.log's lines too: it is compared
    # with each line's time stamp ("YYYY-MM-DD HH:MM:SS ") taken out
    log = "/var/log/dpkg.log"
    with nuwa.open(outs[True]) as a, nuwa.open(outs[False]) as b:
        assert a.diff(outs[False], exclude=(log,)).entries == []
        la, lb = ([line[20:] for line in i.root().read_bytes(log).decode().splitlines()] for i in (a, b))
        assert la == lb and la


def test_reboot_rule_by_package_and_none_without():
    got = reboot_needed([{"package": "libc6", "new_version": "2.36-9+deb12u9"},
                         {"package": "bash", "new_version": "5.2"}], [], [])
    assert got["required"] and got["packages"] == ["libc6"] and "libc6" in got["reasons"][0]
    assert reboot_needed([{"package": "bash", "new_version": "5.2"}], [], []) == \
        {"required": False, "packages": [], "reasons": []}
    # linux-image-*: the kernel
    assert reboot_needed([{"package": "linux-image-6.1.0-28-amd64", "new_version": "1"}], [], [])["required"]


# Ubuntu's /usr/share/update-notifier/notify-reboot-required (update-notifier-common), its logic
NOTIFIER = """#!/bin/sh -e
REBOOT_REQUIRED=/var/run/reboot-required
REBOOT_REQUIRED_PKGS=/var/run/reboot-required.pkgs
touch $REBOOT_REQUIRED
if [ -n "$DPKG_MAINTSCRIPT_PACKAGE" ]; then
    if ! grep -q "^$DPKG_MAINTSCRIPT_PACKAGE$" $REBOOT_REQUIRED_PKGS 2>/dev/null ; then
        echo "$DPKG_MAINTSCRIPT_PACKAGE" >> $REBOOT_REQUIRED_PKGS
    fi
fi
"""
# what Ubuntu's libc6, dbus and kernel postinsts do
CALLER_POSTINST = """#!/bin/sh
set -e
if [ "$1" = configure ] && [ -x /usr/share/update-notifier/notify-reboot-required ]; then
    /usr/share/update-notifier/notify-reboot-required
fi
"""


def test_reboot_from_ubuntus_notify_reboot_required_interpreted_from_the_image(tmp_path):
    """The helper is a script in the image (installed first: the caller depends on it); the
    simulator interprets it, and its writes are what the report reads."""
    if not os.path.exists(IMAGE):
        pytest.skip("testimages/default.qcow2 is missing")
    d = str(tmp_path)
    notifier = build_deb(d, "nuwa-notifier", "1.0",
                         {"/usr/share/update-notifier/notify-reboot-required": NOTIFIER.encode()},
                         modes={"/usr/share/update-notifier/notify-reboot-required": 0o755})
    caller = build_deb(d, "nuwa-libcish", "1.0", {"/usr/share/doc/nuwa-libcish/x": b"x"},
                       extra="Depends: nuwa-notifier\n", scripts={"postinst": CALLER_POSTINST})
    with nuwa.open(IMAGE) as image:
        report = image.patch(debs=[caller, notifier], dry_run=True)
    doc = report.to_json()
    assert report.reboot_required and doc["reboot"]["packages"] == ["nuwa-libcish"], doc["reboot"]
    assert doc["counts"]["deferred"] == 0
    # the same files without the caller: nothing asks for a reboot
    with nuwa.open(IMAGE) as image:
        assert not image.patch(debs=[notifier], dry_run=True).reboot_required
