"""editors models."""

from nuwa.script.commands.editors import awk, sed  # noqa: F401  (registration)
