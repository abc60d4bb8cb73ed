"""Where things are in the checkout, computed once (a test's own depth in ``tests/`` never
matters, so moving a test between folders cannot break a relative path)."""

from __future__ import annotations

import os

#: the repository root (the checkout the tests run from)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: the shipped images and the security updates that come with them
TESTIMAGES = os.path.join(REPO, "testimages")
#: the default image every CLI test reads (and must leave byte-identical)
DEFAULT_IMAGE = os.path.join(TESTIMAGES, "default.qcow2")
#: the project's own tools (material builders, host-side diff)
TOOLS = os.path.join(REPO, "tools")


def tool_module(name: str):
    """The module ``tools/NAME.py`` (the tools run without the tests, so they are no package:
    their folder goes on ``sys.path``, where the tools' own imports of each other need it)."""
    import importlib
    import sys

    if TOOLS not in sys.path:
        sys.path.insert(0, TOOLS)
    return importlib.import_module(name)
