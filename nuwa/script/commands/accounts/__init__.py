"""accounts models."""

from nuwa.script.commands.accounts import adduser, adduser_common, db, deluser, sysusers, useradd, usermod  # noqa: F401  (registration)
