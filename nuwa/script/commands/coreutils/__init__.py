"""coreutils models."""

from nuwa.script.commands.coreutils import attrs, compare, copy, datecmd, envexpr, files, listing, paths, text, transform, users  # noqa: F401  (registration)
