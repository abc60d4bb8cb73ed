"""Helpers shared by the test folders, one copy each (tests mirror the code: ``tests/formats``,
``tests/fs`` with ``tests/fs/ext4``, ``tests/deb``, ``tests/script``, ``tests/patch``,
``tests/cmd``, ``tests/boot``).

Import them as ``from helpers.cli import nuwa``: ``tests/conftest.py`` puts ``tests/`` on
``sys.path``, so this package is found from every folder without path tricks.

- ``paths``: the repository root, ``testimages/``, ``tools/``.
- ``hashing``: SHA-256 of a file (the "original image is byte-identical" checks) and of a tree.
- ``cli``: the ``nuwa`` command line run in a new interpreter, as a user runs it.
- ``trees``: the facts of a host directory tree, path by path (what differential tests compare).
- ``runs``: one program run both ways -- the real one on the host or in a chroot, the model
  through :class:`nuwa.fs.hostdir.HostDirFS` -- with the scratch root stripped from messages.
- ``debtools``: test packages built by the real ``dpkg-deb``; minimal dpkg roots.
- ``oracle``: real dpkg in a chroot of real Debian material, and tree/database comparison.
- ``httpserve``: a local HTTP(S) server on 127.0.0.1 serving a directory, with fault modes
  (status codes, stalls, redirects, oversize and dropped bodies, Range, proxy requests).

The real tools used as judges stay in ``tests/judges.py`` and the real Debian trees in
``tests/debian_tree.py``: nearly every folder imports them by those bare names.
"""
