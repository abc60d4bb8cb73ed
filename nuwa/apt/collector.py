"""The cyclic garbage collector held off while the apt layer builds its bulk data.

Loading a full Debian index builds about 66,000 :class:`nuwa.apt.records.PackageRecord`
objects (bookworm main and security), then the candidate policy and the resolver index them by
name. None of these objects form reference cycles, and they all live until the plan is made,
so every collection the allocations trigger walks them (and everything else alive) for
nothing: at Python's default thresholds (700, 10, 10) the collections took more than half of
loading the parsed records and 80% of indexing them (measured on bench_plan's world:
``_load_parsed`` 235 -> 104 ms, ``Policy.add`` 88 -> 19 ms of CPU). Pausing the collector
only postpones it: the allocation counts stay, and the first allocation after the pause may
start a collection, which then frees whatever cycles were made meanwhile.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def paused():
    """No automatic collection inside the block (nested blocks are fine; an explicit
    ``gc.collect()`` still runs). The collector is enabled again on leaving only if it was
    enabled on entering."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()
