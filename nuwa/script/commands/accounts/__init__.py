"""User and group management.

- ``useradd``: useradd, groupadd;  ``usermod``: usermod, userdel, groupdel, groupmod, gpasswd,
  chfn (shadow-utils 4.13, Debian 12's ``passwd`` package);
- ``adduser``: adduser, addgroup;  ``deluser``: deluser, delgroup (Debian's adduser 3.134;
  ``adduser_common`` is its ``AdduserCommon.pm``);
- ``sysusers``: systemd-sysusers (systemd 252);
- ``pam_auth_update``: pam-auth-update (libpam-runtime 1.5.2), /etc/pam.d/common-* from the
  profiles in /usr/share/pam-configs, speaking debconf through the ``debconf`` family;
- ``pam_getenv``: pam_getenv (libpam-runtime 1.5.2's Perl script): a variable of
  /etc/security/pam_env.conf and /etc/environment (postgresql-common's locale);
- ``update_passwd``: update-passwd (base-passwd 3.6.1), the system accounts brought to
  ``/usr/share/base-passwd/*.master``, reading and writing through glibc's formats
  (``upwd_parse``), asking through the ``debconf`` family's running frontend;
- ``pwck``: pwck, grpck (their read-only checks), pwconv, grpconv (shadow-utils 4.13): what
  shadowconfig runs;
- ``db``: the account files (passwd, shadow, group, gshadow, subuid, subgid) read and written
  the way shadow-utils does, shared by all of them and by systemd-tmpfiles.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "adduser": "adduser.adduser",
    "addgroup": "adduser.adduser",
    "deluser": "deluser.deluser",
    "delgroup": "deluser.deluser",
    "systemd-sysusers": "sysusers.sysusers",
    "useradd": "useradd.useradd",
    "groupadd": "useradd.groupadd",
    "usermod": "usermod.usermod",
    "userdel": "usermod.userdel",
    "groupdel": "usermod.groupdel",
    "groupmod": "usermod.groupmod",
    "gpasswd": "usermod.gpasswd",
    "chfn": "usermod.chfn",
    "pam-auth-update": "pam_auth_update.pam_auth_update",
    "update-passwd": "update_passwd.update_passwd",
    "pwck": "pwck.pwck",
    "grpck": "pwck.grpck",
    "pwconv": "pwck.pwconv",
    "grpconv": "pwck.grpconv",
    "pam_getenv": "pam_getenv.pam_getenv",
})
