"""The Python API: open an image, then ask it for the jobs the command line does.

``nuwa.open(path, writable=False, partition=None)`` returns an :class:`Image`: everything of
:class:`nuwa.image.Image` (``info()``, ``root()``, ``partitions``...) plus the jobs, each the
exact counterpart of a command (``nuwa.cmd`` calls these and only prints):

- :meth:`Image.packages` -- ``nuwa packages --json``;
- :meth:`Image.diff` -- ``nuwa diff --json`` (also :func:`diff` for two paths or directories);
- :meth:`Image.patch` -- ``nuwa patch --deb ...``, returning a
  :class:`nuwa.patch.report.PatchReport` whose ``to_json()`` is ``nuwa patch --json``;
- :meth:`Image.sh` -- ``nuwa sh``, returning a :class:`nuwa.patch.shjob.ShRun`;
- :meth:`Image.firstboot` -- ``nuwa firstboot --json``.

Writing jobs never modify the image unless ``in_place=True`` (and the image was opened with
``writable=True``): by default they write a new qcow2 overlay at ``output``; ``dry_run=True``
writes nothing. Examples that run as tests: docs/api.md.
"""

from __future__ import annotations

import os
from contextlib import ExitStack

from nuwa.deb.arch import foreign_architectures, machine, native_architecture
from nuwa.deb.status import list_packages
from nuwa.errors import NuwaError
from nuwa.fs.diff import diff_trees, format_human, to_doc
from nuwa.fs.hostdir import HostDirFS
from nuwa.image import Image as _DiskImage
from nuwa.script.firstboot_status import dpkg_notes, job_status


class Image(_DiskImage):
    """An opened disk image with the jobs of the command line (see the module note)."""

    def _root_info(self) -> dict:
        """The disk layer's root facts plus the guest's Debian architecture(s), which only the
        dpkg layer knows how to read (``nuwa.deb.arch``: the dpkg database, else ELF headers):
        the native one, dpkg's foreign ones, the machine name."""
        root = super()._root_info()
        if self.root_error is not None or "error" in root:
            return root
        try:
            fs = self.root()
            native = native_architecture(fs)
            foreign = foreign_architectures(fs) if native else []
        except (NuwaError, OSError) as err:
            root["architecture"] = {"error": str(err)}
            return root
        m = machine(native)
        root["architecture"] = {"native": native, "foreign": foreign, "machine": m.uname if m else None,
                                "multiarch": m.multiarch if m else None}
        return root

    def packages(self, admindir: str = "/var/lib/dpkg") -> dict:
        """Installed packages like ``dpkg-query -W``: ``{"image": path, "packages": [rows]}``."""
        return {"image": self.path, "packages": list_packages(self.root(), admindir)}

    def firstboot(self) -> dict:
        """The first-boot job, as ``nuwa firstboot --json`` prints it: ``state`` (none, pending,
        finished...), every entry with its outcome and log after a boot, and ``dpkg_notes``
        (packages dpkg records as installed although their deferred work failed at boot)."""
        fs = self.root()
        status = job_status(fs)
        return {"image": self.path, **status, "dpkg_notes": dpkg_notes(fs, status)}

    def diff(self, other, times: bool = False, include=(), exclude=()) -> "TreeDiff":
        """Compare this image's root filesystem with ``other`` (an Image, an image file or a directory)."""
        return diff(self, other, times=times, include=include, exclude=exclude)

    def patch(self, debs, output: str | None = None, in_place: bool = False, dry_run: bool = False,
              report: str | None = None, firstboot_timeout: int | None = None,
              firstboot_job_timeout: int | None = None, repo_options=None, on_plan=None, repositories=None,
              progress=None, changes: bool = True):
        """Install ``debs`` (.deb paths) offline as ``apt install ./a.deb ./b.deb`` would in the
        image; returns a PatchReport (its document has the ``plan``).

        The files are ordered as apt orders dpkg's calls, whatever order they are given in; a
        dependency they leave unmet is taken from the image's repositories
        (``repo_options``: a :class:`nuwa.apt.repository.RepoOptions`), which are not read
        when nothing is missing. Exactly one of ``output`` (a new qcow2 overlay, backing file
        = this image), ``in_place`` (this image, opened writable) or ``dry_run``; ``report``
        is a host file that receives the JSON document too; ``firstboot_timeout``/
        ``firstboot_job_timeout`` bound each first-boot entry and the whole job (seconds,
        docs/firstboot.md); ``on_plan(doc)`` sees the plan before anything is applied;
        ``progress`` (a :class:`nuwa.apt.progress.Stages`) draws the stages on a terminal;
        ``changes=False`` leaves the document's ``changes`` (every path written) None, which
        saves comparing each path the run touched with the image (``nuwa patch --quiet``
        without ``--json`` or ``--report``, which shows no report, runs so).
        """
        # late: the shell simulator and the apt code load only for the writing jobs (start-up speed)
        from nuwa.patch.upgrade import install_local_debs

        if isinstance(debs, (str, os.PathLike)):  # one path, not a sequence of characters
            debs = [debs]
        return install_local_debs(self, list(debs), repo_options, output=output, in_place=in_place,
                                  dry_run=dry_run, report=report, firstboot_timeout=firstboot_timeout,
                                  firstboot_job_timeout=firstboot_job_timeout, on_plan=on_plan,
                                  repositories=repositories, progress=progress, changes=changes)

    def upgrade(self, request=None, repo_options=None, output: str | None = None, in_place: bool = False,
                dry_run: bool = False, report: str | None = None, firstboot_timeout: int | None = None,
                firstboot_job_timeout: int | None = None, on_plan=None, repositories=None, progress=None,
                changes: bool = True):
        """apt's job offline (``nuwa patch --upgrade`` and friends); returns a PatchReport whose
        document also has the ``plan``.

        ``request`` is a :class:`nuwa.patch.upgrade.UpgradeRequest` (default: ``upgrade``);
        ``repo_options`` a :class:`nuwa.apt.repository.RepoOptions`; ``on_plan(doc)`` sees the
        plan before anything is downloaded; ``progress``, ``changes`` and the rest as for :meth:`patch`.
        """
        # late: the repository code (and OpenPGP) loads only for apt's job (start-up speed)
        from nuwa.patch.upgrade import UpgradeRequest, upgrade_image  # (late, see above)

        return upgrade_image(self, request or UpgradeRequest(), repo_options, output=output, in_place=in_place,
                             dry_run=dry_run, report=report, firstboot_timeout=firstboot_timeout,
                             firstboot_job_timeout=firstboot_job_timeout, on_plan=on_plan,
                             repositories=repositories, progress=progress, changes=changes)

    def plan(self, request=None, repo_options=None, debs=None) -> dict:
        """apt's plan, nothing downloaded or applied: for ``debs`` (``apt install ./FILE...``),
        else for ``request`` (a :class:`nuwa.patch.upgrade.UpgradeRequest`, default
        ``upgrade``). Returns the plan document (``nuwa patch --dry-run --json``'s ``plan``;
        docs/cli.md "The plan"); a request apt refuses raises :class:`nuwa.InvalidInputError`.
        """
        # late: the repository code loads only for apt's jobs (start-up speed)
        from nuwa.patch.upgrade import UpgradeRequest, install_local_debs, upgrade_image  # (late, see above)

        if debs is not None:
            if isinstance(debs, (str, os.PathLike)):
                debs = [debs]
            return install_local_debs(self, list(debs), repo_options, plan_only=True).plan
        return upgrade_image(self, request or UpgradeRequest(), repo_options, plan_only=True).plan

    def sh(self, script: str, args=(), output: str | None = None, in_place: bool = False, dry_run: bool = False,
           name: str = "sh", bash: bool = False):
        """Interpret the shell ``script`` (text) against the image; returns a ShRun.

        ``args`` are the positional parameters, ``name`` is ``$0``; ``output``/``in_place``/
        ``dry_run`` as for :meth:`patch`. A script that does not parse raises
        :class:`nuwa.script.parser.ParseError` before anything is written.
        """
        # late: the shell simulator loads only for the jobs that run scripts (start-up speed)
        from nuwa.patch.shjob import run_sh

        return run_sh(self, script, args, name=name, bash=bash, output=output, in_place=in_place, dry_run=dry_run)


class TreeDiff:
    """The differences between two root filesystems (``nuwa diff``)."""

    def __init__(self, entries: list, a: str, b: str, times: bool):
        self.entries = entries
        self.a, self.b, self.times = a, b, times

    def to_json(self) -> dict:
        """The document ``nuwa diff --json`` prints."""
        return to_doc(self.entries, a=self.a, b=self.b, times=self.times)

    def text(self) -> str:
        """The human listing ``nuwa diff`` prints (grouped like ``virt-diff``)."""
        return format_human(self.entries)


def scan(paths, repo_options=None, options=None, partition: int | None = None, repositories=None):
    """Scan images for pending updates (``nuwa scan``); returns one :class:`nuwa.apt.scan.ImageScan`
    per path, in order (an image that cannot be read carries its ``error``).

    ``repo_options`` is a :class:`nuwa.apt.repository.RepoOptions` (``--repo``, ``--keyring``,
    ``--offline``...), ``options`` a :class:`nuwa.apt.scan.ScanOptions`; ``repositories`` (a
    :class:`nuwa.apt.repository.Repositories`) shares downloads and parses across calls.
    """
    # late: the repository code (and OpenPGP) loads only for scans (start-up speed)
    from nuwa.apt.repository import Repositories  # (late, see above)
    from nuwa.apt.scan import scan_images  # (late, see above)

    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    repos = repositories or Repositories(repo_options)
    try:
        return scan_images(list(paths), repos, options, partition=partition, opener=Image.open)
    finally:
        if repositories is None:  # a caller's own Repositories stays open for its next call
            repos.close()


def open(path, writable: bool = False, partition: int | None = None,  # noqa: A001 - mirrors builtins.open
         unsafe_in_place: bool = False) -> Image:
    """Open a disk image (qcow2, raw disk or bare filesystem); see :class:`nuwa.image.Image`."""
    return Image.open(path, writable=writable, partition=partition, unsafe_in_place=unsafe_in_place)


def diff(a, b, times: bool = False, include=(), exclude=(), partition: int | None = None,
         hashes: bool = True) -> TreeDiff:
    """Compare two trees; each side is an opened Image, an image file, or a host directory (read-only).

    ``hashes=False`` compares contents without recording their sha256 (the human listing
    does not show them, and skipping them is faster).
    """
    with ExitStack() as stack:
        roots, names = [], []
        for side in (a, b):
            if isinstance(side, _DiskImage):
                roots.append(side.root())
                names.append(side.path)
            elif os.path.isdir(side):
                roots.append(stack.enter_context(HostDirFS(side, writable=False)))
                names.append(os.fspath(side))
            else:
                roots.append(stack.enter_context(open(side, partition=partition)).root())
                names.append(os.fspath(side))
        entries = diff_trees(roots[0], roots[1], include=include, exclude=exclude, times=times, hashes=hashes)
    return TreeDiff(entries, names[0], names[1], times)
