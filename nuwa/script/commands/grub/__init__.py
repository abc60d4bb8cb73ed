"""GRUB's programs, as ``update-grub``/``grub-mkconfig`` and the kernel's ``zz-update-grub`` hook
call them (GRUB 2.06-13 of Debian 12).

``update-grub``, ``grub-mkconfig`` and ``/etc/grub.d/*`` are shell scripts of the image: the
simulator interprets them. These models answer what they ask of the machine:

- ``probe``: grub-probe (from the image's own disk description,
  ``nuwa.script.disklayout``), grub-mkrelpath;
- ``tools``: grub-script-check, grub-editenv (``list``), grub-install and grub-bios-setup
  (always deferred: boot code is never written offline), os-prober (deferred).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "grub-probe": "probe.grub_probe",
    "grub-mkrelpath": "probe.grub_mkrelpath",
    "grub-script-check": "tools.grub_script_check",
    "grub-editenv": "tools.grub_editenv",
    "grub-install": "tools.grub_install",
    "grub-bios-setup": "tools.grub_install",
    "os-prober": "tools.os_prober",
})
