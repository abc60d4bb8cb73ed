"""The whole job: plan -> apply in an overlay -> verify -> commit (DESIGN.md "Layers").

``staging`` puts an overlay over an opened image's root filesystem and commits it once (a new
qcow2 overlay, the image in place, or nothing for a dry run); ``runner`` is dpkg's
maintainer-script runner backed by the shell simulator; ``install`` wires the dpkg engine and
that runner into apt's dpkg calls (or ``dpkg -i``) and the applying job; ``upgrade`` is apt's
job around it (``--deb`` as ``apt install ./FILE``, ``--upgrade``...); ``report`` is what a patch run tells (JSON and human lines, CVEs, reboot); ``shjob`` runs one shell script against an image. The public API (``nuwa.api``)
and the command line (``nuwa.cmd``) call these; nothing below this layer imports it.
"""
