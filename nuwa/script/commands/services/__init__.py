"""Service management: what a maintainer script does to services and units.

- ``systemctl`` (systemd 252; ``systemd_units`` and ``systemd_install`` are its unit-file
  lookup and ``install.c``);  ``tmpfiles``: systemd-tmpfiles --create;
- ``systemd_setup``: systemd-machine-id-setup (an ID already in the image, or D-Bus's; a
  random one is left to the first boot of each machine); journalctl --update-catalog
  (``journal_catalog``: the message catalog's database); systemd-hwdb update (``hwdb_update``:
  hwdb.bin written byte for byte, ``hwdb_build`` its parser, ``hwdb_trie`` its format);
- ``deb_systemd``: deb-systemd-helper, deb-systemd-invoke;  ``sysvinit``: update-rc.d,
  invoke-rc.d, service (init-system-helpers 1.65), start-stop-daemon (dpkg), telinit, initctl,
  runlevel (sysvinit-utils);
- ``procs``: pidof, pgrep, pkill, killall, ps (procps, sysvinit-utils, psmisc): an offline
  image runs no processes;  ``netprobes``: ss, netstat, lsof, fuser: it has no socket open
  and no file in use;  ``detect_virt``: systemd-detect-virt --container/--chroot for a disk
  image (a machine, never a container); ``aa-enabled --quiet``/``aa-status --enabled``: no
  running kernel to load AppArmor profiles into;  ``dormant``: epmd's client commands (erlang-base):
  no daemon to reach; vgcfgbackup (lvm2): no volume group visible, nothing mounted on /proc;
  pg_checksystem, run-upgrade-scripts (postgresql-common): no cluster, nothing to check or upgrade;
  ``mysqladmin`` (MariaDB 10.11): no server answers, the client's connection failure;
  ``pgtools`` (on ``pgcommon``, PgCommon.pm): pg_lsclusters, pg_conftool show, pg_updatedicts
  (postgresql-common): the clusters an image describes, every one "down".
Starting, stopping and reloading only matter to a running system: those are dropped and reported.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "deb-systemd-helper": "deb_systemd.deb_systemd_helper",
    "deb-systemd-invoke": "deb_systemd.deb_systemd_invoke",
    "pidof": "procs.pidof",
    "pgrep": "procs.pgrep",
    "pkill": "procs.pkill",
    "killall": "procs.killall",
    "ps": "procs.ps",
    "ss": "netprobes.ss",
    "netstat": "netprobes.netstat",
    "lsof": "netprobes.lsof",
    "fuser": "netprobes.fuser",
    "systemctl": "systemctl.systemctl",
    "update-rc.d": "sysvinit.update_rc_d",
    "invoke-rc.d": "sysvinit.invoke_rc_d",
    "service": "sysvinit.service",
    "start-stop-daemon": "sysvinit.start_stop_daemon",
    "telinit": "sysvinit.telinit",
    "initctl": "sysvinit.telinit",
    "runlevel": "sysvinit.runlevel",
    "systemd-tmpfiles": "tmpfiles.tmpfiles",
    "systemd-machine-id-setup": "systemd_setup.systemd_machine_id_setup",
    "journalctl": "systemd_setup.journalctl",
    "systemd-hwdb": "systemd_setup.systemd_hwdb",
    "systemd-detect-virt": "detect_virt.systemd_detect_virt",
    "aa-enabled": "detect_virt.aa_enabled",
    "aa-status": "detect_virt.aa_enabled",
    "epmd": "dormant.epmd",
    "vgcfgbackup": "dormant.vgcfgbackup",
    "pg_checksystem": "dormant.pg_checksystem",
    "mysqladmin": "mysqladmin.mysqladmin",
    "mariadb-admin": "mysqladmin.mysqladmin",
    "run-upgrade-scripts": "dormant.run_upgrade_scripts",
    "pg_lsclusters": "pgtools.pg_lsclusters",
    "pg_conftool": "pgtools.pg_conftool",
    "pg_updatedicts": "pgtools.pg_updatedicts",
})
