"""The helpers server packages' maintainer scripts call (Debian 12).

- ``apache2``: ``a2enmod``, ``a2dismod``, ``a2enconf``, ``a2disconf``, ``a2ensite``,
  ``a2dissite`` (apache2 2.4.x's ``a2enmod`` Perl script, one program under six names);
- ``rndc``: ``rndc-confgen`` (BIND 9.18: bind9's postinst makes rndc's key);
- ``squid``: ``squid -k parse`` (squid 5.7: squid's postinst reads its configuration's values),
  its configuration reader in ``squidconf``.
- ``slappasswd``: slappasswd (OpenLDAP 2.5.13: slapd's postinst hashes the admin password).
- ``postconf``: ``postconf -e`` and ``-h``/``-hx`` (Postfix 3.7: postfix's postinst edits and
  reads main.cf).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: the names of apache2's one helper program (``apache2.NAMES``), here so that declaring the
#: family imports none of its models
A2_NAMES = ("a2enmod", "a2dismod", "a2enconf", "a2disconf", "a2ensite", "a2dissite")

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    **{name: "apache2.a2enmod" for name in A2_NAMES},
    "update-locale": "locales.update_locale",
    "make-ssl-cert": "sslcert.make_ssl_cert",
    "rndc-confgen": "rndc.rndc_confgen",
    "squid": "squid.squid",
    "slappasswd": "slappasswd.slappasswd",
    "postconf": "postconf.postconf",
})
