"""debconf models."""

from nuwa.script.commands.debconf import confmodule, db, frontend, questions, ucf  # noqa: F401  (registration)
