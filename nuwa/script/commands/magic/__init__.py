"""file (5.44, bookworm): libmagic's answer about a file, from the image's own compiled magic
database.

- ``filecmd``: the ``file`` program (options, the filesystem checks, ``file_buffer``'s order,
  ``-z``); ``softmagic`` (the database's entries evaluated, with ``mvalues``: the values compared and
  printed, ``ere``: glibc's extended regular expressions, and ``cprintf``: the descriptions'
  printf); ``textmagic`` (character
  sets and the text description); ``builtins`` (tar, JSON, CSV, CDF, ELF).
  The database format is ``nuwa.formats.magicdb``. update-cracklib (cracklib-runtime) asks
  ``file -z -b`` whether each word list is text.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "file": "filecmd.file",
})
