"""Per-day material caches: prune the days that no run will use again.

The judges' material (mmdebstrap trees, local mirrors, boot images) is built once per day and
machine, under a name that ends with the day (``...-20261206`` or ``...-2026-12-06``).  A machine
that runs the suite every day would otherwise keep every day's copy; ``prune`` removes the ones
older than ``keep_days`` (yesterday's stays: a run that crossed midnight may still read it).
"""
from __future__ import annotations

import datetime
import os
import re
import shutil

_STAMP = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})(?:\.lock|\.tmp)?$")


def day_of(name: str) -> datetime.date | None:
    """The day a cache entry's name ends with, or None."""
    m = _STAMP.search(name)
    if not m:
        return None
    try:
        return datetime.date(int(m[1]), int(m[2]), int(m[3]))
    except ValueError:
        return None


def prune(parent: str, prefix: str = "", keep_days: int = 2, today: datetime.date | None = None) -> list[str]:
    """Remove ``parent``'s entries named ``prefix...DAY`` older than ``keep_days``; return them."""
    today = today or datetime.date.today()
    removed = []
    try:
        names = os.listdir(parent)
    except OSError:
        return removed
    for name in names:
        day = day_of(name) if name.startswith(prefix) else None
        if day is None or (today - day).days < keep_days:
            continue
        path = os.path.join(parent, name)
        if os.path.islink(path):
            continue
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
        removed.append(path)
    return removed
