"""The plan's summary -- counts, archive sizes, disk space change -- judged by apt's own lines.

``apt-get --assume-no ACTION`` prints what ``apt-get`` prints before it asks (then answers no,
nothing done): "N upgraded, N newly installed, N to remove and N not upgraded.", "Need to get
X/Y of archives." and "After this operation, X of additional disk space will be used." (or
"... disk space will be freed."). :func:`nuwa.patch.upgrade.plan_lines` must print the same
lines for Nuwa's plan of the same request on the same files: a constructed ``file:``
repository (whose archives apt does not need to get) and a dpkg status with ``Installed-Size``
fields, for an upgrade, a full upgrade, an install and a remove.
"""

from __future__ import annotations

import re

import pytest

from helpers.aptjudge import host_apt, lists_of, make_repo, status_text
from nuwa.apt.order import order
from nuwa.apt.resolver import Request, plan
from nuwa.deb.status import StatusFile
from nuwa.patch.upgrade import UpgradeRequest, apt_size, plan_document, plan_lines
from planworld import policy_from_lists

pytestmark = [pytest.mark.judge]

SUMMARY = re.compile(r"^(\d+ upgraded|Need to get|After this operation)")

STATUS = [
    ("a", "1.0", "all", "install", "Installed-Size: 100\nDepends: liba1\n"), ("liba1", "1.0", "all", "install", "Installed-Size: 50\n"),
    ("h", "1.0", "all", "hold", "Installed-Size: 7\n"), ("big", "1.0", "all", "install", "Installed-Size: 40000\n"),
    ("user", "1.0", "all", "install", "Installed-Size: 3\nDepends: big\n"),
    ("x", "1.0", "all", "install", "Installed-Size: 20\n"),
    ("plugin", "1.0", "all", "install", "Installed-Size: 4\nDepends: x (<< 2.0)\n"),
]
REPO = [
    ("a", "2.0", "all", "Installed-Size: 130\nDepends: liba2\n"), ("liba2", "2.0", "all", "Installed-Size: 60\n"),
    ("liba1", "1.0", "all", "Installed-Size: 50\n"), ("h", "2.0", "all", "Installed-Size: 9\n"),
    ("big", "1.0", "all", "Installed-Size: 40000\n"), ("user", "1.0", "all", "Installed-Size: 3\nDepends: big\n"),
    ("x", "2.0", "all", "Installed-Size: 25\n"), ("plugin", "1.0", "all", "Installed-Size: 4\nDepends: x (<< 2.0)\n"),
    ("new", "1.0", "all", "Installed-Size: 12345\nDepends: liba2\n"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("summary")
    uri = make_repo(str(tmp / "repo"), "stable", REPO, {"Origin": "T"})
    run = host_apt(str(tmp / "apt"), [f"{uri} stable main"], status_text(STATUS))
    policy = policy_from_lists(lists_of(str(tmp / "apt")), [(uri, "stable")])
    return run, policy, StatusFile(status_text(STATUS))


@pytest.mark.parametrize("request_, apt_args", [
    (Request("upgrade"), ("upgrade", "--with-new-pkgs")),
    (Request("full-upgrade"), ("full-upgrade",)),
    (Request("install", ("new",)), ("install", "new")),
    (Request("remove", ("big",)), ("remove", "big")),
], ids=["upgrade", "full-upgrade", "install", "remove"])
def test_summary_lines_are_apts(world, request_, apt_args):
    run, policy, status = world
    text = run("apt-get", "--assume-no", *apt_args, stderr=True, check=False)
    apt_lines = [line for line in text.splitlines() if SUMMARY.match(line)]
    assert apt_lines and apt_lines[0][0].isdigit(), text
    p = plan(policy, status, request_)
    steps = order(p, status) if (p.install or p.remove) else []
    doc = plan_document(p, UpgradeRequest(request_.action, request_.names), status,
                        [(s.action, list(s.operands)) for s in steps])
    assert [line for line in plan_lines(doc) if SUMMARY.match(line)] == apt_lines


@pytest.mark.parametrize("n, text", [(0, "0 B"), (999, "999 B"), (9999, "9999 B"), (10000, "10.0 kB"),
                                     (99999, "100.0 kB"), (100000, "100 kB"), (1234567, "1235 kB"),
                                     (12641280, "12.6 MB"), (40960000, "41.0 MB")])
def test_sizes_printed_as_apts_size_to_str(n, text):
    assert apt_size(n) == text
