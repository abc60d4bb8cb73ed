"""Command models, in families; importing this package registers them all."""

from nuwa.script.commands import coreutils, findutils, editors  # noqa: F401  (registration)
from nuwa.script.commands import dpkg, debconf, accounts, services, caches, miscutils  # noqa: F401  (registration)
