"""Set-ups of a test tree for differential tests: functions ``setup(root)`` that change a host
tree the same way before the real program runs in one copy and Nuwa's model in the other."""

from __future__ import annotations


def both(*setups):
    """One set-up made of several, run in order."""
    def setup(root):
        for s in setups:
            s(root)
    return setup
