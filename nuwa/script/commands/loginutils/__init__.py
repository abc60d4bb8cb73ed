"""Running a command as another user (BusyBox's ``loginutils/``): ``su`` and ``runuser``
(util-linux 2.38, ``login-utils/su-common.c``).

- ``su``: su, runuser (the command runs in the simulator as the user);
- ``setpriv``: setpriv (util-linux 2.38.1), a program run with a user's login credentials;
- ``credfs``: the filesystem as that user's process sees it (permission checks, ownership of
  what it creates, the credentials ``id`` and ``test`` ask for).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "su": "su.su",
    "runuser": "su.runuser",
    "setpriv": "setpriv.setpriv",
})
