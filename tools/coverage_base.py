"""What the coverage tool's scripts run against: a VM disk image, and each package's dependencies.

tools/script_coverage.py measures how much of Debian 12's maintainer-script corpus Nuwa runs
offline. What a script does depends on the system it meets, so this module builds two things:

**The base: a VM disk image** (``CORPUS/vm.raw``, built once, as root, a few minutes). Nuwa
patches disk images of installed systems, not chroots: the base is a real one, opened by Nuwa's
own image layer read-only, exactly as ``nuwa patch`` opens an image (the disk's layout goes to
the models that ask about the disk: ``df``, ``grub-probe``...). It is what the Debian installer
leaves on a server VM without tasks: mmdebstrap's ``important`` variant (the Priority required
and important packages) plus a kernel (``linux-image-cloud-amd64``, so ``uname -r`` has an
installed kernel to name), ``grub-pc``, ``systemd-sysv`` and ``openssh-server``, all installed by
real dpkg; the host name ``vm`` in ``/etc/hostname`` and ``/etc/hosts`` in the installer's form
(``127.0.1.1 vm``, no domain: netcfg's line when none was given); a machine ID in
``/etc/machine-id`` (an installed machine has one; a cloud template's empty one is the
``minbase`` base's case). GPT with a BIOS boot partition and an ext4 root (``mkfs.ext4 -d``),
as tools/make_default_image.sh makes testimages/default.qcow2.

``--base minbase`` keeps the older base: the bare mmdebstrap minbase tree as a directory (no
kernel, no host name in ``/etc/hosts``, no disk): docs/firstboot.md gives both figures.

**Each package's dependencies** (:class:`Closure`): dpkg configures a package only once its
``Depends`` are configured, and runs its ``preinst`` only once its ``Pre-Depends`` are; scripts
are written for that (``postgresql-common``'s postinst loads a Perl module of
``postgresql-client-common``). Before a package's scenarios, the closure of its ``Pre-Depends``
and ``Depends`` that the base does not satisfy is unpacked from the corpus's kept .debs and
marked installed -- their files, not their scripts (those are measured on their own). An
alternative is satisfied by the first of its choices the base has installed (or provides),
else by the first the corpus keeps (by name, then by ``Provides``), as apt picks; a dependency
neither has is listed in the report (``dependencies_missing``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

VM_VARIANT = "important"
VM_PACKAGES = ("linux-image-cloud-amd64", "grub-pc", "systemd-sysv", "openssh-server")
VM_HOSTNAME = "vm"
#: one fixed ID: the base is one installed machine (any valid 128-bit hex ID would do)
VM_MACHINE_ID = "5c6f1d3a2b7e4f80a1c2d3e4f5a6b7c8"
VM_DISK_MIB = 4096
VM_FS_OFFSET_MIB = 2


def vm_image_path(corpus: str) -> str:
    """Where the VM base image lives in the corpus."""
    return os.path.join(corpus, "vm.raw")


def ensure_vm_image(corpus: str, mirror: str) -> str:
    """Build ``CORPUS/vm.raw`` (see the module note) unless it exists; return its path."""
    out = vm_image_path(corpus)
    if os.path.exists(out):
        return out
    work = os.path.join(corpus, "vm-build")
    shutil.rmtree(work, ignore_errors=True)
    root = os.path.join(work, "root")
    os.makedirs(work)
    subprocess.run(["mmdebstrap", "--mode=root", f"--variant={VM_VARIANT}", "--include=" + ",".join(VM_PACKAGES),
                    "bookworm", root, f"deb {mirror} bookworm main"], check=True, stdout=sys.stderr)
    _personalize(root)
    raw = os.path.join(work, "vm.raw")
    size = VM_DISK_MIB << 20
    with open(raw, "wb") as f:
        f.truncate(size)
    layout = ("label: gpt\n"
              "start=2048, size=2048, type=21686148-6449-6E6F-744E-656564454649, name=bios\n"
              f"start={VM_FS_OFFSET_MIB << 11}, type=0FC63DAF-8483-4772-8E3D-693D7D7D4709, name=root\n")
    subprocess.run(["sfdisk", "-q", raw], input=layout.encode(), check=True)
    fs_bytes = size - (VM_FS_OFFSET_MIB << 20) - (1 << 20)  # the backup GPT lives in the last sectors
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", root, "-E", f"offset={VM_FS_OFFSET_MIB << 20}",
                    raw, f"{fs_bytes >> 10}k"], check=True)
    os.replace(raw, out)
    shutil.rmtree(work, ignore_errors=True)
    return out


def _personalize(root: str) -> None:
    """The installed machine's own files: host name, hosts, machine ID (module note)."""
    def write(rel: str, text: str) -> None:
        with open(os.path.join(root, rel), "w") as f:
            f.write(text)
    write("etc/hostname", VM_HOSTNAME + "\n")
    write("etc/hosts", f"127.0.0.1\tlocalhost\n127.0.1.1\t{VM_HOSTNAME}\n\n"
          "# The following lines are desirable for IPv6 capable hosts\n"
          "::1     localhost ip6-localhost ip6-loopback\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n")
    write("etc/machine-id", VM_MACHINE_ID + "\n")


# ---- dependencies ------------------------------------------------------------------------------
_ALT_RE = re.compile(r"^\s*([a-z0-9][a-z0-9+.-]*)(?::[a-z0-9-]+)?\s*(?:\(([<>=]+)\s*([^)]*)\))?\s*(?:\[[^]]*\])?\s*$")


def parse_relations(value: str) -> list[list[str]]:
    """``Depends`` -> ``[[alt, alt...], ...]`` of package names (versions and arch qualifiers
    dropped: the corpus and the base are one release, whose versions agree)."""
    out = []
    for group in value.split(","):
        alts = []
        for alt in group.split("|"):
            m = _ALT_RE.match(alt)
            if m:
                alts.append(m.group(1))
        if alts:
            out.append(alts)
    return out


def control_fields(text: str) -> dict[str, str]:
    """The fields of one control paragraph, names lower-cased, continuation lines joined."""
    fields: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if line[:1] in (" ", "\t") and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, v = line.split(":", 1)
            key = key.strip().lower()
            fields[key] = v.strip()
    return fields


def installed_names(status_text: str) -> set[str]:
    """Package names (and what they provide) installed according to a dpkg status file."""
    names = set()
    for para in status_text.split("\n\n"):
        f = control_fields(para)
        if f.get("status", "").endswith(" installed") and "package" in f:
            names.add(f["package"])
            for alts in parse_relations(f.get("provides", "")):
                names.update(alts)
    return names


class Closure:
    """The dependencies of corpus packages that the base lacks (module note)."""

    def __init__(self, base_installed: set[str], corpus_controls: dict[str, str]):
        self.base = base_installed
        self.controls = corpus_controls  # name -> control text of every corpus package
        self.provides: dict[str, str] = {}
        for name in sorted(corpus_controls):
            for alts in parse_relations(control_fields(corpus_controls[name]).get("provides", "")):
                for p in alts:
                    self.provides.setdefault(p, name)

    def _pick(self, alts: list[str]) -> str | None:
        """The corpus package that satisfies an alternative group, None if the base does
        (or nothing can: the caller lists it)."""
        if any(a in self.base for a in alts):
            return None
        for a in alts:
            if a in self.controls:
                return a
        for a in alts:
            if a in self.provides:
                return self.provides[a]
        raise LookupError(" | ".join(alts))

    def of(self, name: str) -> tuple[list[str], list[str]]:
        """(the packages to unpack before ``name``'s scenarios, dependencies first; the groups
        nothing satisfies). ``name`` itself is not in the list."""
        order: list[str] = []
        missing: list[str] = []
        seen = {name}

        def visit(pkg: str) -> None:
            f = control_fields(self.controls.get(pkg, ""))
            for field in ("pre-depends", "depends"):
                for alts in parse_relations(f.get(field, "")):
                    try:
                        dep = self._pick(alts)
                    except LookupError as e:
                        missing.append(str(e))
                        continue
                    if dep is None or dep in seen:
                        continue
                    seen.add(dep)
                    visit(dep)
                    order.append(dep)

        visit(name)
        return order, missing
