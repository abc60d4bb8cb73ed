"""Differential tests of the ``date`` model against GNU coreutils 9.1 ``date``.

The image's zone files are copies of the host's TZif files under the scratch root; the real
``date`` is pointed at the same bytes with ``TZ=:/scratch/...`` (glibc reads any TZif path),
the model reads them from the image through ``TZ``, ``TZDIR`` or ``/etc/localtime``. Fixed
instants come from ``-d @N`` and ``-r FILE``; "now" is compared on its stable parts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Drop, Invocation

MODELS = default_models()

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "America/St_Johns")


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    if not os.path.isfile("/usr/share/zoneinfo/Europe/Paris"):
        pytest.skip("the host has no tzdata to copy zone files from")
    root = tmp_path_factory.mktemp("img")
    for z in ZONES:
        os.makedirs(root / "usr/share/zoneinfo" / os.path.dirname(z), exist_ok=True)
        shutil.copyfile(f"/usr/share/zoneinfo/{z}", root / "usr/share/zoneinfo" / z)
    os.makedirs(root / "etc")
    os.symlink("/usr/share/zoneinfo/Europe/Paris", root / "etc/localtime")
    with open(root / "f", "w") as f:
        f.write("x")
    os.utime(root / "f", ns=(1_700_000_000_123_456_789, 1_700_000_000_123_456_789))
    return str(root)


def real(root: str, argv: list[str], tz: str | None) -> tuple[int, bytes, bytes]:
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
    if tz is None:
        env["TZ"] = f":{root}/usr/share/zoneinfo/Europe/Paris"  # what the image's /etc/localtime names
    elif tz.startswith("zone:"):
        env["TZ"] = f":{root}/usr/share/zoneinfo/{tz[5:]}"
    else:
        env["TZ"] = tz
    p = subprocess.run(["date", *argv[1:]], executable=tool("date"), cwd=root, env=env, capture_output=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def model(root: str, argv: list[str], tz: str | None) -> tuple[int, bytes, bytes]:
    env = {"LC_ALL": "C"}
    if tz is not None:
        env["TZ"] = tz[5:] if tz.startswith("zone:") else tz
    inv = Invocation(argv=list(argv), fs=HostDirFS(root), cwd="/", env=env, models=MODELS)
    st = MODELS["date"](inv)
    return st, bytes(inv.stdout), bytes(inv.stderr)


ALL_FORMAT = ("+%Y-%m-%d %H:%M:%S %z %Z %s %-d %_m %^a %#Z %:z %::z %:::z %j %U %W %V %G %g %u %w %C %y %e "
              "%k %l %p %#p %P %r %R %T %D %F %c %x %X %% %a %A %b %B %h %n%t| %10Y %-H %_H %05d %^B %#b %Q %")
INSTANTS = ["0", "1700000000", "1711846799", "1711846800", "1730000000", "951782400", "1234567890", "-86400",
            "4102444800", "1609459199"]


@pytest.mark.parametrize("tz", [None, "UTC0", "", "zone:America/New_York", "zone:Asia/Kolkata",
                                "zone:Australia/Lord_Howe", "zone:America/St_Johns", "EST5", "JST-9", "<+0330>-3:30"])
@pytest.mark.parametrize("at", INSTANTS)
def test_formats_at_fixed_instants(image, tz, at):
    argv = ["date", "-d", f"@{at}", ALL_FORMAT]
    assert model(image, argv, tz) == real(image, argv, tz)


@pytest.mark.parametrize("args", [
    [], ["-u"], ["-R"], ["-I"], ["-Iseconds"], ["-Ihours"], ["-Iminutes"], ["-Ins"], ["--iso-8601=date"],
    ["--rfc-3339=seconds"], ["--rfc-3339=ns"], ["--rfc-3339=date"], ["-u", "+%s %N %3N %6N"], ["--utc", "-R"],
    ["-Ix"], ["--rfc-3339=bogus"], ["+%s", "+%Y"], ["-R", "+%Y"],
])
@pytest.mark.parametrize("tz", [None, "zone:America/New_York"])
def test_output_forms(image, args, tz):
    argv = ["date", "-d", "@1700000000", *args]
    assert model(image, argv, tz) == real(image, argv, tz)


@pytest.mark.parametrize("text", [
    "@0", "@1700000000", "2024-03-31", "2024-03-31 02:30", "2024-03-31 03:30:15", "2024-10-27 02:30:00",
    "2023-11-14T22:13:20", "2023-11-14 22:13:20 UTC", "2023-11-14 22:13:20Z", "2023-11-14 22:13:20 +0530",
    "2023-11-14 22:13:20 -03:00", "Tue Nov 14 22:13:20 UTC 2023", "Tue Nov 14 23:13:20 CET 2023",
    "Nov 14 22:13:20 2023", "Sun Jul  2 10:00:00 CEST 2023", "Tue Nov 14 22:13:20 GMT 2023",
    "@1700000000 3 hours ago", "2023-11-14 22:13:20 UTC +90 minutes", "2023-11-14 10:00 UTC 2 weeks ago",
])
@pytest.mark.parametrize("tz", [None, "zone:UTC", "UTC0"])
def test_date_strings(image, text, tz):
    argv = ["date", "-d", text, "+%F %T %z %Z %s"]
    try:
        got = model(image, argv, tz)
    except Defer as d:
        # DST-sensitive day arithmetic and zone names other than the local ones may defer
        assert "weeks ago" in text or ("CE" in text and tz is not None), d.reason
        return
    assert got == real(image, argv, tz)


def test_tzdata_postinst_sequence(image):
    """tzdata's postinst: ``UTdate=$(LC_ALL=C TZ=UTC0 date)`` then ``date -d "$UTdate"``."""
    ut = model(image, ["date", "-d", "@1700000000"], "UTC0")
    assert ut == real(image, ["date", "-d", "@1700000000"], "UTC0")
    argv = ["date", "-d", ut[1].decode().strip()]
    assert model(image, argv, None) == real(image, argv, None)
    # with the current time: the same text both ways (the clock is the host's, read once each)
    t0 = time.time()
    m = model(image, ["date"], "UTC0")[1].decode().strip()
    r = real(image, ["date"], "UTC0")[1].decode().strip()
    if int(time.time()) == int(t0):
        assert m == r
    later = ["date", "-d", m]
    assert model(image, later, None) == real(image, later, None)


def test_reference_file_and_now(image):
    for args in (["-r", "f"], ["-r", "f", "+%s.%N"], ["-u", "-r", "f", "-R"], ["-r", "nonexist"]):
        argv = ["date", *args]
        assert model(image, argv, None) == real(image, argv, None)
    m = int(model(image, ["date", "+%s"], None)[1])
    assert abs(m - time.time()) < 5
    assert model(image, ["date", "+%Y %Z"], None) == real(image, ["date", "+%Y %Z"], None) \
        or int(time.time()) % 86400 < 5


def test_deferred_and_dropped(image):
    for argv, kind in ((["date", "-s", "2020-01-01"], Drop), (["date", "-f", "dates"], Defer),
                       (["date", "-d", "next thursday"], Defer), (["date", "-d", "yesterday"], Defer),
                       (["date", "011203042020"], Defer), (["date", "-d", "2020-01-01 10:00 PST"], Defer)):
        with pytest.raises(kind):
            model(image, argv, None)
    with pytest.raises(Defer):
        model(image, ["date"], "Nowhere/Zone")  # no such zone file in the image
    with pytest.raises(Defer):
        model(image, ["date"], "EST5EDT,M3.2.0,M11.1.0")  # POSIX rules: not modelled
