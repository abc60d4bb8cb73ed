"""Building test packages with the real dpkg-deb, and minimal dpkg roots for ``dpkg --root``."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

from nuwa.deb.ar import build_archive


def build_deb(out_dir: str, name: str, version: str, files: dict, *, conffiles=(), extra: str = "",
              scripts: dict | None = None, triggers: str | None = None, arch: str = "all",
              modes: dict | None = None) -> str:
    """A .deb made by ``dpkg-deb --build`` (``files``: path -> bytes, or ("link", target), or ("dir",));
    regular files are 0644 unless ``modes`` (path -> mode) says otherwise."""
    stage = os.path.join(out_dir, f"stage-{name}-{version}")
    os.makedirs(os.path.join(stage, "DEBIAN"), exist_ok=True)
    for path, content in files.items():
        p = os.path.join(stage, path.lstrip("/"))
        if isinstance(content, tuple) and content[0] == "dir":
            os.makedirs(p, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, tuple) and content[0] == "link":
            os.symlink(content[1], p)
        else:
            with open(p, "wb") as f:
                f.write(content)
            os.chmod(p, (modes or {}).get(path, 0o644))
    ctl = f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: Test <t@example.org>\n"
    ctl += extra + f"Description: test package {name}\n long text\n"
    with open(os.path.join(stage, "DEBIAN/control"), "w") as f:
        f.write(ctl)
    if conffiles:
        with open(os.path.join(stage, "DEBIAN/conffiles"), "w") as f:
            f.write("".join(c + "\n" for c in conffiles))
    if triggers:
        with open(os.path.join(stage, "DEBIAN/triggers"), "w") as f:
            f.write(triggers)
    for sname, body in (scripts or {}).items():
        sp = os.path.join(stage, "DEBIAN", sname)
        with open(sp, "w") as f:
            f.write(body)
        os.chmod(sp, 0o755)
    out = os.path.join(out_dir, f"{name}_{version}_{arch}.deb")
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", stage, out], check=True,
                   capture_output=True)
    return out


def make_root(root: str) -> str:
    """An empty tree with a valid, empty dpkg admin directory (for ``dpkg --root``)."""
    for d in ("var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "var/log", "etc"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    for f in ("var/lib/dpkg/status", "var/lib/dpkg/available"):
        open(os.path.join(root, f), "w").close()
    with open(os.path.join(root, "var/lib/dpkg/info/format"), "w") as f:
        f.write("1\n")
    with open(os.path.join(root, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(root, "etc/group"), "w") as f:
        f.write("root:x:0:\n")
    return root


def raw_deb(path: str, members: list[tuple], *, compression: str = ".gz", control: str | None = None,
            ar_members: list | None = None, control_files: dict | None = None) -> str:
    """A .deb assembled member by member (for malformed input): ``members`` are tarfile entries
    ``(name, type, data_or_target)`` with type "file", "dir", "symlink", "hardlink";
    ``control_files`` maps more control.tar member names (``conffiles``, ``triggers``) to bytes."""
    def tar_bytes(entries):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
            for name, kind, val in entries:
                ti = tarfile.TarInfo(name)
                ti.uname = ti.gname = "root"
                if kind == "file":
                    ti.size = len(val)
                    ti.mode = 0o644
                    tf.addfile(ti, io.BytesIO(val))
                    continue
                if kind == "dir":
                    ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                elif kind == "symlink":
                    ti.type, ti.linkname = tarfile.SYMTYPE, val
                elif kind == "hardlink":
                    ti.type, ti.linkname = tarfile.LNKTYPE, val
                tf.addfile(ti)
        return buf.getvalue()

    import gzip
    import lzma

    ctl = control or "Package: bad\nVersion: 1.0\nArchitecture: all\nMaintainer: T <t@e>\nDescription: bad\n"
    extra = [("./" + n, "file", v) for n, v in (control_files or {}).items()]
    ctar = gzip.compress(tar_bytes([("./", "dir", None), ("./control", "file", ctl.encode())] + extra), mtime=0)
    dtar = tar_bytes(members)
    data = {".gz": lambda b: gzip.compress(b, mtime=0), ".xz": lzma.compress, "": lambda b: b}.get(
        compression, lambda b: b)(dtar)
    ar = ar_members if ar_members is not None else [("debian-binary", b"2.0\n"), ("control.tar.gz", ctar),
                                                    ("data.tar" + compression, data)]
    with open(path, "wb") as f:
        f.write(build_archive(ar))
    return path
