"""apt's half of the job: the image's own package sources, their signed metadata, downloads,
candidates and (later) the upgrade plan, handed to ``nuwa/patch/``.

The layer sits above ``nuwa/deb`` (dpkg's job; dpkg never looks at repositories) and below
``nuwa/patch``. Everything here reads the image's configuration (sources, keys, apt.conf,
preferences) from the image, never from the host; the network is reached only through
:mod:`nuwa.apt.fetch`.
"""
