"""chrony (4.3, bookworm): the NTP daemon's configuration, as its maintainer scripts ask about it.

- ``chronyd``: ``chronyd -p`` parses ``/etc/chrony/chrony.conf`` (with its ``include`` and
  ``confdir`` files) and prints it; chrony's postinst greps that output for a ``user``
  directive. Every other form starts the daemon or sets the clock: deferred.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "chronyd": "chronyd.chronyd",
})
