"""GLib's schema and module cache tools (libglib2.0-bin / libglib2.0-0, glib 2.74.6).

- ``compile``: glib-compile-schemas, writing ``gschemas.compiled`` byte for byte; its parts:
  ``gparse`` (the GMarkup callbacks), ``gschema`` (keys, enums, schemas, strinfo word arrays), ``gmarkup`` (the
  markup events and positions), ``gvtext`` (the GVariant text format), ``gvariant`` (the
  serialised form), ``gvdb`` (the file writer) and
  ``commands/_ghash`` (GHashTable's slot order, which decides the file's layout; shared with
  update-mime-database);
- ``querymodules``: gio-querymodules (deferred when a directory holds a module: loading it
  runs image code).
"""

from __future__ import annotations

from nuwa.script.context import lazy_models

#: program basename -> "module.model" of this package (imported at first use, nuwa.script.context.LazyModel):
#: everything this family provides, declared here and nowhere else
MODELS = lazy_models(__name__, {
    "glib-compile-schemas": "compile.glib_compile_schemas",
    "gio-querymodules": "querymodules.gio_querymodules",
})
