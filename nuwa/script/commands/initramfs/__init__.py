"""initramfs builders: what decides whether an initramfs can be built offline.

``mkinitramfs`` and ``update-initramfs`` are shell scripts of the image (initramfs-tools
0.142); the simulator interprets them with their hooks, so neither has a model of its own
except a guard (``builders.py``):

- ``mkinitramfs``: reads the configuration the script would read (``initramfs.conf``,
  ``conf.d``, ``conf-hooks.d``, by running those shell fragments in the simulator) and defers
  ``MODULES=dep``, which picks modules from the hardware of the running system (``/sys``,
  ``/proc/mounts``); otherwise it interprets the image's own script, whole or not at all;
- ``dracut``: images that build their initramfs with dracut (Ubuntu 25.10 and later, some
  Debian systems) are identified by the call and deferred with that reason.

The hooks' questions about the image's own devices (the ``fsck`` hook's ``blkid -t ... -o
device`` and klibc ``fstype``) are answered from the disk description (``blockid.py``).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "mkinitramfs": "builders.mkinitramfs",
    "dracut": "builders.dracut",
    "blkid": "blockid.blkid",
    "fstype": "blockid.fstype",
})
