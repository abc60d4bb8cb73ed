"""Command models, one module per family; importing this package registers them all."""

from nuwa.script.commands import attrs, awk, compare, copy, files, find, grep, paths, sed, text, transform, users  # noqa: F401  (registration)
