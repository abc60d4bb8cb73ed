"""console-setup (1.221, bookworm): the console keyboard compiler setupcon runs.

- ``ckbcomp``: compiles an XKB keymap (rules, keycodes and symbols of xkb-data under
  ``/usr/share/X11/xkb``) into the Linux console keymap ``loadkeys`` reads, as
  console-setup's ``setupcon --save-only`` runs it for ``/etc/console-setup/cached_*.kmap.gz``.
  Used only when the image's ``/usr/bin/ckbcomp`` is console-setup 1.221's text (its data
  tables are read from it); FreeBSD keymaps, verbosity and anything the model cannot
  reproduce byte for byte are deferred.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "ckbcomp": "ckbcomp.ckbcomp",
})
