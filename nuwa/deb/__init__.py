"""dpkg reimplemented over the filesystem model: archives, versions, the package database, operations.

See docs/dpkg.md.
"""
