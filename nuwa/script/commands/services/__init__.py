"""services models."""

from nuwa.script.commands.services import deb_systemd, procs, systemctl, systemd_install, systemd_units, sysvinit, tmpfiles  # noqa: F401  (registration)
