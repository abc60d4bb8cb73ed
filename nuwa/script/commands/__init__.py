"""Command models, one module per family; importing this package registers them all."""

from nuwa.script.commands import attrs, copy, files, paths  # noqa: F401  (registration)
