"""dpkg's helper programs (dpkg 1.21.22), over the same package database the dpkg engine in
``nuwa.deb`` writes.

- ``dpkg``: the enquiry actions of ``dpkg`` itself (``--compare-versions``, ``--print-architecture``...);
- ``query``: dpkg-query;  ``divert``: dpkg-divert;  ``statoverride``: dpkg-statoverride;
  ``trigger``: dpkg-trigger;  ``architecture``: dpkg-architecture (of dpkg-dev);  ``maintscript_helper``: dpkg-maintscript-helper (the image's own
  script, interpreted);  ``update_alternatives``: update-alternatives;
- helpers: ``common`` (what dpkg's C tools share), ``alternatives_fsys`` (update-alternatives'
  admin files and links).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "dpkg-architecture": "architecture.dpkg_architecture",
    "dpkg-divert": "divert.dpkg_divert",
    "dpkg": "dpkg.dpkg",
    "dpkg-maintscript-helper": "maintscript_helper.dpkg_maintscript_helper",
    "dpkg-query": "query.dpkg_query",
    "dpkg-statoverride": "statoverride.dpkg_statoverride",
    "dpkg-trigger": "trigger.dpkg_trigger",
    "update-alternatives": "update_alternatives.update_alternatives",
})
