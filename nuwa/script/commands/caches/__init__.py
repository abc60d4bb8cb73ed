"""caches models."""

from nuwa.script.commands.caches import elf, ldcache, ldconfig, openssl, x509hash  # noqa: F401  (registration)
