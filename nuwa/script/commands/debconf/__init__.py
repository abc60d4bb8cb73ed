"""debconf 1.5.82 and ucf 3.0043, the configuration-question tools of maintainer scripts.

- ``frontend``: debconf's ``frontend`` (the confmodule protocol a maintainer script speaks over
  its pipes), debconf-communicate, debconf-escape; ``confmodule``, ``questions`` and ``db`` are
  ``Debconf::ConfModule``, ``Debconf::Question``/``Template`` and the ``File`` database driver;
  ``perlconfig`` the Perl ``config`` scripts dictionaries-common generates (recognised whole,
  modelled for the frontend, which runs them; not programs of their own, so not in MODELS);
- ``ucf``: what the real ``ucf``/``ucfr`` shell scripts need to run in the simulator: ``getopt``
  (util-linux) and ``seq`` (coreutils), and the ``perl`` one-liner ucf uses, which the ``perl``
  model of ``miscutils`` dispatches to (so ``perl`` is declared there, once);
- ``ucfq``: ucf's query tool (Perl), over the registry and the hashfile.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "frontend": "frontend.frontend",
    "debconf-escape": "frontend.debconf_escape",
    "debconf-communicate": "frontend.debconf_communicate",
    "getopt": "ucf.getopt",
    "seq": "ucf.seq",
    "ucfq": "ucfq.ucfq",
})
