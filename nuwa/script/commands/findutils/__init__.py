"""findutils models."""

from nuwa.script.commands.findutils import find, grep  # noqa: F401  (registration)
