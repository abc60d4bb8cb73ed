"""Mail transport agents' helpers their maintainer scripts call (Debian 12).

- ``postalias``: ``newaliases`` and ``postalias hash:FILE`` (Postfix 3.7: postfix's postinst
  rebuilds ``/etc/aliases.db``), the aliases file's reader in ``aliasfile``, the Berkeley DB
  hash writer in :mod:`nuwa.formats.bdbhash`.
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "newaliases": "postalias.newaliases",
    "postalias": "postalias.postalias",
})
