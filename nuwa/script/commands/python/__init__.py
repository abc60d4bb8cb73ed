"""Python byte-compilation (CPython 3.11 and dh-python as bookworm ships them).

- ``pycompile``: ``python3`` / ``python3.X`` only as ``py_compile`` (``/usr/lib/python3.X/
  py_compile.py FILES`` or ``-m py_compile -``), the code object made by a host interpreter
  of the same bytecode format (``bytecode``); the few programs recognised by their text
  (``listchanges``: apt-listchanges's debconf helper and its ``-c 'import debconf'`` probe);
  any other Python program is deferred;
- ``dhpython``: dh-python's ``py3compile`` and ``py3clean``.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "python3": "pycompile.python",
    **{f"python3.{minor}": "pycompile.python" for minor in range(5, 15)},
    "py3compile": "dhpython.py3compile",
    "py3clean": "dhpython.py3clean",
})
