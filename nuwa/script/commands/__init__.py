"""Command models, in families, and the default model set.

Each family is a package named after the upstream package family its programs come from
(as BusyBox keeps its applets in ``coreutils/``, ``findutils/``, ``editors/``...); its
``__init__`` says which upstream package each model mirrors and declares its models in one
``MODELS`` dict, by name (``"module.function"``: imported when first looked up,
:class:`nuwa.script.context.LazyModel`). Modules used by several families stay here at the top: ``_common``
(coreutils' quoting, error lines, the image's users and groups), ``_args`` (a small GNU
``getopt_long``), ``_regex`` (POSIX regular expressions) and ``modes`` (chmod's mode
expressions).

Nothing is registered by importing: :func:`default_models` builds the full set, and whoever
creates an interpreter passes a set in (see docs/command-models.md, "How to add a command
model").
"""

from __future__ import annotations

from nuwa.script.commands import (accounts, archival, caches, chrony, console, coreutils, cracklib, debconf, dpkg,
                                  editors, findutils, glib, grub, initramfs, kmod, linuxbase, loginutils, magic, mail,
                                  mandb, miscutils, python, registries, server, services)
from nuwa.script.context import ModelSet

#: the families, in the order their models are listed
FAMILIES = (coreutils, findutils, editors, dpkg, debconf, accounts, services, caches, kmod, miscutils, archival,
            initramfs, grub, python, linuxbase, registries, loginutils, server, chrony, glib, mail, console, mandb,
            cracklib, magic)


def default_models() -> ModelSet:
    """Every command model of every family, as one :class:`~nuwa.script.context.ModelSet`.

    A program is declared by exactly one family; a name declared twice is a bug in the
    declarations and raises ``ValueError`` rather than letting import order decide.
    """
    models: dict = {}
    for family in FAMILIES:
        twice = models.keys() & family.MODELS.keys()
        if twice:
            raise ValueError(f"{family.__name__} declares models already declared: {sorted(twice)}")
        models.update(family.MODELS)
    return ModelSet(models)


def maintainer_stand_in(script: bytes, env: dict[str, str]) -> str | None:
    """The shell text to run for a maintainer script that is not a shell script but whose
    text a model recognises (krb5-config's Perl postinst: it execs debconf's frontend on
    itself, and the frontend runs its model), or None when none does. Raises
    :class:`~nuwa.script.context.Defer` where the recognised script would not start so."""
    from nuwa.script.commands.debconf.krb5config import stand_in  # the one known so far: loaded when asked

    return stand_in(script, env)
