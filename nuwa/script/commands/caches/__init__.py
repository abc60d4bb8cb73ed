"""Cache regenerators: programs whose whole effect is a file computed from other files.

- ``ldconfig``: ldconfig, ldconfig.real (glibc 2.36): soname links and ``/etc/ld.so.cache``
  byte for byte (``ldcache`` is the cache format, ``elf`` just enough ELF to read sonames);
- ``ldd``: ldd (glibc 2.36): the loader's dependency walk over the image's files, printed as
  ``LD_TRACE_LOADED_OBJECTS`` does (what initramfs-tools' ``copy_exec`` reads);
- ``openssl``: ``openssl rehash`` / ``c_rehash`` (OpenSSL 3.0): the subject-hash links of a
  certificate directory (``x509hash`` computes ``X509_NAME_hash``);
- ``iconcache``: gtk-update-icon-cache (GTK 3.24): a theme's ``icon-theme.cache`` byte for
  byte (``iconcache_write`` is the format and its validator).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "gtk-update-icon-cache": "iconcache.gtk_update_icon_cache",
    "ldconfig": "ldconfig.ldconfig",
    "ldconfig.real": "ldconfig.ldconfig",
    "ldd": "ldd.ldd",
    "openssl": "openssl.openssl",
})
