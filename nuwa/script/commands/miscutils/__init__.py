"""miscutils models."""

from nuwa.script.commands.miscutils import locales, perl_oneliners, runparts, sysinfo  # noqa: F401  (registration)
