"""cracklib (2.9.6, cracklib-runtime of bookworm): the password dictionary tools that
``update-cracklib`` runs.

- ``packer``: cracklib-packer, writing the ``.pwd``/``.pwi``/``.hwm`` dictionary byte for byte
  (``packlib``: the format, after cracklib's ``packlib.c`` ``PutPW``/``PWClose``).
  ``cracklib-format`` is a shell script (gzip, grep, tr, sort) the simulator runs itself.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "cracklib-packer": "packer.cracklib_packer",
})
