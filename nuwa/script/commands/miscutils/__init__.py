"""Machine facts and small utilities that fit no larger family (BusyBox's ``miscutils/``).

- ``sysinfo``: hostname (and its link dnsdomainname), ischroot (debianutils), mountpoint
  (util-linux), nproc (coreutils), logger and wall (bsdutils);  ``locales``: locale (glibc 2.36);  ``iconv``: iconv (glibc 2.36);
- ``runparts``: run-parts (debianutils 5.7);  ``locales`` also holds gettext (gettext-base 0.21);
- ``perl_oneliners``: ``perl`` for the few generated one-liners (dh_python3, libc6, ucf's);
  every other Perl program is deferred;
- ``identifiers``: iscsi-iname (open-iscsi 2.1.8), nvme gen-hostnqn/show-hostnqn (nvme-cli 2.3),
  uuidgen (util-linux 2.38.1): machine identifiers, random as in a chroot install; dbus-uuidgen
  (dbus 1.14.10): the D-Bus machine ID copied from /etc/machine-id, never made up offline;
- ``sysinfo`` also holds kbd_mode (kbd 2.5.1): a dormant image has no console;
- ``caps``: setcap, getcap (libcap2-bin 2.66): file capabilities (``capnames``: libcap's text
  form and the ``security.capability`` value).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "gettext": "locales.gettext",
    "iconv": "iconv.iconv",
    "locale": "locales.locale",
    "perl": "perl_oneliners.perl",
    "run-parts": "runparts.run_parts",
    "hostname": "sysinfo.hostname",
    "dnsdomainname": "sysinfo.dnsdomainname",
    "stty": "sysinfo.stty",
    "tty": "sysinfo.tty",
    "kbd_mode": "sysinfo.kbd_mode",
    "ischroot": "sysinfo.ischroot",
    "mountpoint": "sysinfo.mountpoint",
    "nproc": "sysinfo.nproc",
    "logger": "sysinfo.logger",
    "wall": "sysinfo.wall",
    "iscsi-iname": "identifiers.iscsi_iname",
    "nvme": "identifiers.nvme",
    "uuidgen": "identifiers.uuidgen",
    "dbus-uuidgen": "dbusid.dbus_uuidgen",
    "setcap": "caps.setcap",
    "getcap": "caps.getcap",
})
