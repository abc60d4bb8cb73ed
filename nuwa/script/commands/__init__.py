"""Command models, one module per family; importing this package registers them all."""

from nuwa.script.commands import attrs, awk, compare, copy, files, find, grep, paths, sed, text, transform, users  # noqa: F401  (registration)
from nuwa.script.commands import ldconfig, openssl, runparts  # noqa: F401,E402  (registration)
from nuwa.script.commands import adduser, deluser, sysusers, tmpfiles, useradd, usermod  # noqa: F401,E402  (registration: account tools)
from nuwa.script.commands import dpkg_cmd, dpkg_divert, dpkg_maintscript_helper, dpkg_query, dpkg_statoverride, dpkg_trigger  # noqa: F401,E402  (dpkg helper programs)
from nuwa.script.commands import debconf  # noqa: F401,E402  (registration: debconf's frontend, debconf-communicate, debconf-escape)
from nuwa.script.commands import ucf  # noqa: F401,E402  (registration: getopt, seq, perl one-liner for the real ucf/ucfr scripts)
from nuwa.script.commands import deb_systemd, systemctl, sysvinit  # noqa: F401,E402  (registration: service management)
from nuwa.script.commands import update_alternatives  # noqa: F401,E402  (registration: update-alternatives)
from nuwa.script.commands import datecmd, listing, locales, procs, sysinfo  # noqa: F401,E402  (registration: machine facts, clock, processes, ls)
from nuwa.script.commands import perl_oneliners  # noqa: F401,E402  (registration: perl, after ucf: dh_python3 and libc6 one-liners, ucf's through ucf.perl)
from nuwa.script.commands import envexpr  # noqa: F401,E402  (registration: env, expr, getconf)
