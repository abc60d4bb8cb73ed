"""dpkg models."""

from nuwa.script.commands.dpkg import alternatives_fsys, common, divert, dpkg, maintscript_helper, query, statoverride, trigger, update_alternatives  # noqa: F401  (registration)
