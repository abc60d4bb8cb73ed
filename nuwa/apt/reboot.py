"""Which package updates ask for a reboot (``nuwa scan``'s ``reboot`` flag, the patch report's
``reboot_required``), in a module of its own: the patch report needs it without apt's
repository code."""

from __future__ import annotations

import re

#: packages whose update asks for a reboot: the kernel and its modules, CPU microcode, the C
#: library and the init system (what Debian's and Ubuntu's postinsts flag in
#: /run/reboot-required, and needrestart cannot restart in place)
REBOOT_PACKAGES = re.compile(r"^(linux-(image|modules|signed-image|headers-[0-9]).*|linux-image|"
                             r"intel-microcode|amd64-microcode|libc6|systemd|systemd-sysv|dbus|dbus-daemon)$")
