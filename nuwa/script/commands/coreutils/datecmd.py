"""A model of GNU ``date`` (coreutils 9.1) and the image's time zone.

The current time is legitimate offline: running the update now is what the script would do
now on the booted VM, so "now" is the host clock, as for every file Nuwa stamps. The zone is
the image's: ``TZ`` from the script's environment (empty: UTC; ``UTC0``-like POSIX strings
without daylight-saving rules; a zone name read from the image's ``/usr/share/zoneinfo`` or
``TZDIR``; ``:/path``), else the image's ``/etc/localtime`` (UTC when missing, as glibc
does). Zone files are TZif, read with :meth:`zoneinfo.ZoneInfo.from_file` from the image's
bytes, never from the host's database.

Formats follow gnulib's ``nstrftime`` in the C locale, with GNU's flags (``-`` ``_`` ``0``
``^`` ``#``), widths, ``%N``, ``%s``, ``%:z`` forms; options ``+FORMAT -u -d -r -R -I[SPEC]
--rfc-3339=SPEC``. ``-d`` accepts the forms scripts use (see :func:`parse_date_string`);
other strings are deferred rather than guessed. ``-s`` (set the clock) is dropped; ``-f``
is deferred.
"""

from __future__ import annotations

import calendar
import datetime as _dt
import io
import re
import time
import zoneinfo

from nuwa.script.commands import _args
from nuwa.script.commands._common import now_ns, quote as _quote
from nuwa.script.context import Defer, Drop, Invocation

_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_TZIF_MAX = 1 << 20


class Zone:
    """A time zone: ``at(epoch) -> (utc offset seconds, abbreviation)``; ``local_to_utc``."""

    def __init__(self, tz: _dt.tzinfo | None = None, fixed: tuple[int, str] | None = None):
        self.tz, self.fixed = tz, fixed

    def at(self, seconds: int) -> tuple[int, str]:
        if self.fixed is not None:
            return self.fixed
        d = _dt.datetime.fromtimestamp(seconds, self.tz)
        return int(d.utcoffset().total_seconds()), d.tzname() or ""

    def local_to_utc(self, y: int, mo: int, d: int, hh: int, mm: int, ss: int) -> int | None:
        """Epoch seconds of a local wall-clock time; None when the zone skips it (spring
        forward: GNU date says "invalid date"); the standard-time reading when it is repeated,
        as glibc's mktime with ``tm_isdst = -1`` gives it."""
        if self.fixed is not None:
            return calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0)) - self.fixed[0]
        wall = calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0))
        cands = []
        for fold in (0, 1):
            t = int(_dt.datetime(y, mo, d, hh, mm, ss, tzinfo=self.tz, fold=fold).timestamp())
            if t + self.at(t)[0] == wall:
                cands.append(t)
        if not cands:
            return None
        return max(cands)

    def abbreviations(self, seconds: int) -> dict[str, int]:
        """Abbreviation -> UTC offset, for those this zone uses around ``seconds``."""
        out = {}
        for k in range(-2, 3):
            off, name = self.at(seconds + k * 86400 * 91)
            out.setdefault(name, off)
        return out


UTC = Zone(fixed=(0, "UTC"))


def _tzif(inv: Invocation, path: str) -> Zone:
    try:
        data = inv.fs.read_bytes(path)
    except (OSError, ValueError):
        raise Defer(f"time zone file {path} is not in the image") from None
    if len(data) > _TZIF_MAX or not data.startswith(b"TZif"):
        raise Defer(f"time zone file {path} is not a TZif file")
    try:
        return Zone(zoneinfo.ZoneInfo.from_file(io.BytesIO(data), key=path))
    except (ValueError, OSError) as e:
        raise Defer(f"time zone file {path}: {e}") from None


def image_zone(inv: Invocation, env: dict[str, str] | None = None) -> Zone:
    """The zone ``localtime()`` uses for the script (see the module docstring)."""
    env = inv.env if env is None else env
    tz = env.get("TZ")
    if tz is None:
        try:
            inv.fs.stat("/etc/localtime")
        except (OSError, ValueError):
            return UTC
        return _tzif(inv, "/etc/localtime")
    if tz == "":
        return UTC
    spec = tz[1:] if tz.startswith(":") else tz
    m = re.fullmatch(r"([A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)([+-]?)(\d{1,2})(?::(\d\d)(?::(\d\d))?)?", spec)
    if m and not tz.startswith(":"):
        name = m.group(1).strip("<>")
        off = int(m.group(3)) * 3600 + int(m.group(4) or 0) * 60 + int(m.group(5) or 0)
        return Zone(fixed=(off if m.group(2) == "-" else -off, name))  # POSIX: west of Greenwich is +
    if spec.startswith("/"):
        return _tzif(inv, spec)
    if re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", spec) and ".." not in spec:
        return _tzif(inv, env.get("TZDIR", "/usr/share/zoneinfo").rstrip("/") + "/" + spec)
    raise Defer(f"TZ={tz!r} is not modelled")


# ---- strftime (gnulib nstrftime, C locale) -------------------------------------------------------

def _iso_week(d: _dt.datetime) -> tuple[int, int]:
    y, w, _ = d.isocalendar()
    return y, w


def _offset(off: int, colons: int) -> str:
    sign = "-" if off < 0 else "+"
    off = abs(off)
    h, m, s = off // 3600, off // 60 % 60, off % 60
    if colons == 0:
        return f"{sign}{h:02d}{m:02d}"
    if colons == 1:
        return f"{sign}{h:02d}:{m:02d}"
    if colons == 2:
        return f"{sign}{h:02d}:{m:02d}:{s:02d}"
    if s:
        return f"{sign}{h:02d}:{m:02d}:{s:02d}"
    return f"{sign}{h:02d}:{m:02d}" if m else f"{sign}{h:02d}"


def strftime(fmt: str, seconds: int, nanos: int, zone: Zone) -> str:
    """``fmt`` expanded for the instant ``seconds``.``nanos`` in ``zone``."""
    off, abbr = zone.at(seconds)
    d = _dt.datetime(1970, 1, 1) + _dt.timedelta(seconds=seconds + off)
    out = []
    i = 0
    while i < len(fmt):
        c = fmt[i]
        if c != "%":
            out.append(c)
            i += 1
            continue
        start = i
        i += 1
        pad = None
        upper = swap = False
        while i < len(fmt) and fmt[i] in "-_0^#":
            if fmt[i] == "^":
                upper = True
            elif fmt[i] == "#":
                swap = True
            else:
                pad = fmt[i]
            i += 1
        w = ""
        while i < len(fmt) and fmt[i].isdigit():
            w += fmt[i]
            i += 1
        width = int(w) if w else None
        colons = 0
        while i < len(fmt) and fmt[i] == ":":
            colons += 1
            i += 1
        if i >= len(fmt):
            out.append(fmt[start:])
            break
        conv = fmt[i]
        i += 1
        if colons and conv != "z" or colons > 3:
            out.append(fmt[start:i])
            continue
        num = None  # (value, default width, default pad char)
        text = None
        if conv == "a":
            text = _DAYS[(d.weekday() + 1) % 7][:3]
        elif conv == "A":
            text = _DAYS[(d.weekday() + 1) % 7]
        elif conv in "bh":
            text = _MONTHS[d.month - 1][:3]
        elif conv == "B":
            text = _MONTHS[d.month - 1]
        elif conv == "c":
            text = strftime("%a %b %e %H:%M:%S %Y", seconds, nanos, zone)
        elif conv == "C":
            num = (d.year // 100, 2, "0")
        elif conv == "d":
            num = (d.day, 2, "0")
        elif conv == "D":
            text = strftime("%m/%d/%y", seconds, nanos, zone)
        elif conv == "e":
            num = (d.day, 2, " ")
        elif conv == "F":
            text = strftime("%Y-%m-%d", seconds, nanos, zone)
        elif conv == "g":
            num = (_iso_week(d)[0] % 100, 2, "0")
        elif conv == "G":
            num = (_iso_week(d)[0], 1, "0")
        elif conv == "H":
            num = (d.hour, 2, "0")
        elif conv == "I":
            num = ((d.hour + 11) % 12 + 1, 2, "0")
        elif conv == "j":
            num = (d.timetuple().tm_yday, 3, "0")
        elif conv == "k":
            num = (d.hour, 2, " ")
        elif conv == "l":
            num = ((d.hour + 11) % 12 + 1, 2, " ")
        elif conv == "m":
            num = (d.month, 2, "0")
        elif conv == "M":
            num = (d.minute, 2, "0")
        elif conv == "n":
            text = "\n"
        elif conv == "N":
            digits = f"{nanos:09d}"
            text = digits[:width] if width else digits
            width = None
        elif conv == "p":
            text = "AM" if d.hour < 12 else "PM"
            if swap:
                text, swap = text.lower(), False
        elif conv == "P":
            text = "am" if d.hour < 12 else "pm"
        elif conv == "r":
            text = strftime("%I:%M:%S %p", seconds, nanos, zone)
        elif conv == "R":
            text = strftime("%H:%M", seconds, nanos, zone)
        elif conv == "s":
            num = (seconds, 1, "0")
        elif conv == "S":
            num = (d.second, 2, "0")
        elif conv == "t":
            text = "\t"
        elif conv == "T":
            text = strftime("%H:%M:%S", seconds, nanos, zone)
        elif conv == "u":
            num = (d.isoweekday(), 1, "0")
        elif conv == "U":
            num = ((d.timetuple().tm_yday + 6 - (d.weekday() + 1) % 7) // 7, 2, "0")
        elif conv == "V":
            num = (_iso_week(d)[1], 2, "0")
        elif conv == "w":
            num = ((d.weekday() + 1) % 7, 1, "0")
        elif conv == "W":
            num = ((d.timetuple().tm_yday + 6 - d.weekday()) // 7, 2, "0")
        elif conv == "x":
            text = strftime("%m/%d/%y", seconds, nanos, zone)
        elif conv == "X":
            text = strftime("%H:%M:%S", seconds, nanos, zone)
        elif conv == "y":
            num = (d.year % 100, 2, "0")
        elif conv == "Y":
            num = (d.year, 1, "0")
        elif conv == "z":
            text = _offset(off, colons)
        elif conv == "Z":
            text = abbr
            if swap:
                text, swap = text.lower(), False
        elif conv == "%":
            text = "%"
        else:
            out.append(fmt[start:i])  # gnulib copies an unknown conversion as it is
            continue
        if num is not None:
            value, dwidth, dpad = num
            neg = value < 0
            s = str(abs(value))
            p = dpad if pad is None else ("" if pad == "-" else (" " if pad == "_" else "0"))
            wd = dwidth if width is None else width
            if neg:
                wd -= 1
            if p:
                s = s.rjust(wd, p) if p == " " else s.zfill(wd)
            text = ("-" + s) if neg else s
            if p == " " and neg:
                text = ("-" + s.lstrip()).rjust(wd + 1)
        else:
            if upper or swap:
                text = text.upper()
            if width is not None and len(text) < width:
                text = text.rjust(width, "0" if pad == "0" else " ")
        out.append(text)
    return "".join(out)


# ---- date strings ----------------------------------------------------------------------------

_MON = {m[:3].lower(): i + 1 for i, m in enumerate(_MONTHS)}
_DAY = {d[:3].lower() for d in _DAYS}
_UNITS = {"sec": 1, "second": 1, "min": 60, "minute": 60, "hour": 3600, "day": 86400, "week": 604800,
          "fortnight": 1209600}


def _zone_token(tok: str, zone: Zone, near: int) -> int | None:
    """The UTC offset a zone word in a date string means, None for "local"; Defer if unknown.

    parse-datetime knows UTC/UT/GMT/Z, numeric offsets and the local zone's own
    abbreviations (each with its offset: "CET" in July still means +01:00); its table of
    other zone names is not modelled.
    """
    if tok is None:
        return None
    t = tok.upper()
    if t in ("UTC", "UT", "GMT", "Z"):
        return 0
    m = re.fullmatch(r"([+-])(\d\d):?(\d\d)", tok)
    if m:
        v = int(m.group(2)) * 3600 + int(m.group(3)) * 60
        return -v if m.group(1) == "-" else v
    local = zone.abbreviations(near)
    if tok in local:
        return local[tok]
    raise Defer(f"date: time zone {tok!r} in a date string is not modelled")


class InvalidDate(Exception):
    """GNU date's "invalid date" (exit 1)."""


def parse_date_string(text: str, zone: Zone, now: int) -> int:
    """Epoch seconds for the GNU date strings scripts use; Defer for anything else.

    Forms: ``now``/``today``, ``yesterday``/``tomorrow``, ``@SECONDS``, ``YYYY-MM-DD``
    (midnight), ``YYYY-MM-DD[T ]HH:MM[:SS][ZONE]``, date(1)'s own output ``Wed Nov 26
    20:46:00 UTC 2026`` (weekday optional), and relative ``[+-]N UNIT[s] [ago]`` after any
    of them. ZONE is UTC/UT/GMT/Z, ``±hh[:]mm`` or the local zone's abbreviation.
    """
    s = " ".join(text.strip().split())
    rel = 0
    m = re.fullmatch(r"(.*?)\s*([+-]?\d+)\s+(sec|second|min|minute|hour|day|week|fortnight)s?(\s+ago)?", s, re.I)
    if m:
        n = int(m.group(2)) * _UNITS[m.group(3).lower()]
        rel = -n if m.group(4) else n
        s = m.group(1).strip()
        if rel % 86400 == 0 and rel:
            raise Defer("date: day-relative dates across daylight-saving changes are not modelled")
    low = s.lower()
    if low in ("", "now", "today") and (low or rel):
        return now + rel
    if low in ("yesterday", "tomorrow"):
        raise Defer("date: day-relative dates across daylight-saving changes are not modelled")
    m = re.fullmatch(r"@(-?\d+)", s)
    if m:
        if rel:
            raise InvalidDate(text)  # nothing may follow @SECONDS
        return int(m.group(1))
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d))?)? ?(Z|UTC|GMT|UT|[+-]\d\d:?\d\d|[A-Za-z]{3,5})?",
                     s, re.I)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        hh, mm, ss = int(m.group(4) or 0), int(m.group(5) or 0), int(m.group(6) or 0)
        zone_tok = m.group(7)
    else:
        m = re.fullmatch(r"(?:([A-Za-z]{3}),? )?([A-Za-z]{3}) +(\d{1,2}) (\d\d):(\d\d):(\d\d)(?: ([A-Za-z]{3,5}|[+-]\d{4}))? (\d{4})",
                         s)
        if not m or (m.group(1) and m.group(1).lower() not in _DAY) or m.group(2).lower() not in _MON:
            raise Defer(f"date: date string {text!r} is not modelled")
        y, mo, d = int(m.group(8)), _MON[m.group(2).lower()], int(m.group(3))
        hh, mm, ss = int(m.group(4)), int(m.group(5)), int(m.group(6))
        zone_tok = m.group(7)
    try:
        base = calendar.timegm((y, mo, d, hh, mm, ss, 0, 0, 0))
        _dt.datetime(y, mo, d, hh, mm, ss)
    except ValueError:
        raise Defer(f"date: invalid date {text!r}") from None
    off = _zone_token(zone_tok, zone, base)
    t = zone.local_to_utc(y, mo, d, hh, mm, ss) if off is None else base - off
    if t is None:
        raise InvalidDate(text)
    return t + rel


# ---- date ----------------------------------------------------------------------------------------

_DATE = _args.spec("d:f:I::r:Rs:u", {"date": "d", "file": "f", "iso-8601": "I", "reference": "r",
                                      "rfc-email": "R", "rfc-2822": "R", "rfc-822": "R",
                                      "rfc-3339": ("rfc-3339", _args.REQ), "set": "s", "utc": "u",
                                      "universal": "u", "debug": ("debug", _args.NO),
                                      "resolution": ("resolution", _args.NO)})
_ISO = {"hours": "%Y-%m-%dT%H%:z", "minutes": "%Y-%m-%dT%H:%M%:z", "date": "%Y-%m-%d",
        "seconds": "%Y-%m-%dT%H:%M:%S%:z", "ns": "%Y-%m-%dT%H:%M:%S,%N%:z"}
_RFC3339 = {"date": "%Y-%m-%d", "seconds": "%Y-%m-%d %H:%M:%S%:z", "ns": "%Y-%m-%d %H:%M:%S.%N%:z"}


def _pick(inv: Invocation, table: dict[str, str], value: str, opt: str) -> str | None:
    keys = [k for k in table if k.startswith(value)] if value else []
    if value in table:
        return table[value]
    if len(keys) == 1:
        return table[keys[0]]
    inv.err(f"{inv.argv[0]}: invalid argument '{value}' for '{opt}'\nValid arguments are:\n"
            + "".join(f"  - '{k}'\n" for k in table) + f"Try '{inv.argv[0]} --help' for more information.\n")
    return None


def date(inv: Invocation) -> int:
    """``date [-u] [-d STRING|-r FILE] [+FORMAT|-R|-I[SPEC]|--rfc-3339=SPEC]``."""
    try:
        opts, ops = _args.parse(inv, _DATE)
    except _args.UsageError as e:
        return _args.usage(inv, e)
    fmt = None
    when = ref = None
    utc = False
    for k, v in opts:
        if k == "s":
            raise Drop("sets the running system's clock")
        if k in ("f", "debug", "resolution"):
            raise Defer(f"date: option {k} is not modelled")
        if k == "d":
            when = v
        elif k == "r":
            ref = v
        elif k == "u":
            utc = True
        elif k == "R":
            fmt = "%a, %d %b %Y %H:%M:%S %z"
        elif k == "I":
            fmt = _pick(inv, _ISO, v, "--iso-8601") if v else _ISO["date"]
            if fmt is None:
                return 1
        elif k == "rfc-3339":
            fmt = _pick(inv, _RFC3339, v, "--rfc-3339")
            if fmt is None:
                return 1
    if when is not None and ref is not None:
        inv.err(f"{inv.argv[0]}: the options to specify dates for printing are mutually exclusive\n"
                f"Try '{inv.argv[0]} --help' for more information.\n")
        return 1
    for op in ops:
        if not op.startswith("+"):
            raise Defer("date MMDDhhmm (setting the clock) or an extra operand")
    if len(ops) > 1:
        inv.err(f"{inv.argv[0]}: extra operand '{ops[1]}'\nTry '{inv.argv[0]} --help' for more information.\n")
        return 1
    if ops:
        if fmt is not None:
            inv.err(f"{inv.argv[0]}: multiple output formats specified\n")
            return 1
        fmt = ops[0][1:]
    zone = UTC if utc else image_zone(inv)
    ns = now_ns()
    if ref is not None:
        try:
            st = inv.fs.stat(inv.path(ref))
        except OSError as e:
            import os
            inv.err(f"{inv.argv[0]}: {ref}: {os.strerror(e.errno)}\n")
            return 1
        seconds, nanos = divmod(st.st_mtime_ns, 10**9)
    elif when is not None:
        try:
            seconds, nanos = parse_date_string(when, zone, ns // 10**9), 0
        except InvalidDate:
            inv.err(f"{inv.argv[0]}: invalid date {_quote(when)}\n")
            return 1
        m = re.fullmatch(r"\s*@-?\d+\.(\d{1,9})\s*", when)
        if m:
            raise Defer("date: fractional seconds in a date string")
        if when.strip().lower() in ("now", "today"):
            nanos = ns % 10**9
    else:
        seconds, nanos = divmod(ns, 10**9)
    if fmt is None:
        fmt = "%a %b %e %H:%M:%S %Z %Y"
    try:
        time.gmtime(seconds)
        text = strftime(fmt, seconds, nanos, zone)
    except (OverflowError, ValueError, OSError):
        raise Defer("date: a time outside the range the model formats") from None
    inv.out(text + "\n")
    return 0
