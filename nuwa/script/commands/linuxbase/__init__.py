"""linux-base (4.9, bookworm): the kernel packages' helpers.

- ``linux_base``: ``linux-version`` (``compare``, ``sort``, ``list``) and
  ``linux-update-symlinks`` (``install``/``upgrade``/``remove``, ``/etc/kernel-img.conf``),
  ``linux-check-removal`` (no kernel of a dormant image is running: nothing to ask).
"""

from __future__ import annotations

from nuwa.script.commands.linuxbase import linux_base

#: program basename -> model: everything this family provides, declared here and nowhere else
MODELS = {
    "linux-version": linux_base.linux_version,
    "linux-update-symlinks": linux_base.linux_update_symlinks,
    "linux-check-removal": linux_base.linux_check_removal,
}
