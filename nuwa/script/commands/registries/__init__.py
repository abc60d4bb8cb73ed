"""Catalog and registry updaters: programs that regenerate one shared file from the pieces
packages register (Debian 12).

- ``xmlcatalog``: ``update-xmlcatalog`` (xml-core 0.18+nmu1);
- ``sgmlcatalog``: ``update-catalog`` (sgml-base 1.31);
- ``saxparsers``: ``update-perl-sax-parsers`` (libxml-sax-perl 1.02+dfsg-3);
- ``mime``: ``update-mime`` (mailcap 3.70+nmu1);  ``helpztags``: Vim's help tags (vim-common 9.0);
- ``installinfo`` (with ``infofiles``, ``infodir``): ``install-info`` (texinfo 6.8), the Info
  ``dir`` file that ``update-info-dir`` rebuilds;
- ``mimedb`` (with ``mimedb_parse``, ``mimedb_xml``, ``mimecache``; ``commands/_ghash``):
  ``update-mime-database`` (shared-mime-info 2.2), the shared MIME-info database;
- ``emacsen``: ``emacs-package-install``, ``emacs-package-remove`` (emacsen-common 3.0.5), the
  add-on packages' per-flavor install and remove scripts, and ``emacs-install``,
  ``emacs-remove``, the flavors' (an Emacs package's postinst and prerm);
- ``perlish``: the Perl rules those scripts share (Getopt::Long, ``die``, ``chop``, ``split``).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "update-xmlcatalog": "xmlcatalog.update_xmlcatalog",
    "update-catalog": "sgmlcatalog.update_catalog",
    "update-perl-sax-parsers": "saxparsers.update_perl_sax_parsers",
    "update-mime": "mime.update_mime",
    "helpztags": "helpztags.helpztags",
    "install-info": "installinfo.install_info",
    "ginstall-info": "installinfo.install_info",  # the package's link to it
    "update-mime-database": "mimedb.update_mime_database",
    "emacs-package-install": "emacsen.emacs_package_install",
    "emacs-package-remove": "emacsen.emacs_package_remove",
    "emacs-install": "emacsen.emacs_install",
    "emacs-remove": "emacsen.emacs_remove",
})
