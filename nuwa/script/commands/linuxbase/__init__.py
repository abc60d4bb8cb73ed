"""linux-base (4.9, bookworm): the kernel packages' helpers.

- ``linux_base``: ``linux-version`` (``compare``, ``sort``, ``list``) and
  ``linux-update-symlinks`` (``install``/``upgrade``/``remove``, ``/etc/kernel-img.conf``),
  ``linux-check-removal`` (no kernel of a dormant image is running: nothing to ask).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "linux-version": "linux_base.linux_version",
    "linux-update-symlinks": "linux_base.linux_update_symlinks",
    "linux-check-removal": "linux_base.linux_check_removal",
})
