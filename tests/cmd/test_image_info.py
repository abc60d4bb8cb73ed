"""``Image`` and ``nuwa info``: disks made by sfdisk, mkfs and qemu-img, judged by the same tools.

The partition facts are checked against ``sfdisk --json``, the filesystem facts against
``blkid -p`` and ``dumpe2fs -h``, the disk facts against ``qemu-img info --output=json``,
and os-release parsing against dash sourcing the same file.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from helpers.cli import nuwa
from helpers.hashing import file_sha256
from helpers.paths import DEFAULT_IMAGE, TESTIMAGES
from judges import run, tool
import nuwa as nuwa_api
from nuwa.errors import CorruptImageError, InvalidInputError
from nuwa.image import Image, parse_os_release

MiB = 1024 * 1024

OS_RELEASE = """PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""


def need_ext4():
    """Skip (visibly) while the ext4 engine is not in the tree."""
    try:
        from nuwa.fs.ext4 import open_ext4  # noqa: F401
    except ImportError:
        pytest.skip("the ext4 engine (nuwa.fs.ext4.open_ext4) is not available yet")


def make_tree(root: str, with_markers: bool, os_release: str = OS_RELEASE) -> None:
    os.makedirs(os.path.join(root, "etc"), exist_ok=True)
    os.makedirs(os.path.join(root, "usr/lib"), exist_ok=True)
    with open(os.path.join(root, "etc/hostname"), "w") as f:
        f.write("test\n")
    if with_markers:
        os.makedirs(os.path.join(root, "var/lib/dpkg"))
        with open(os.path.join(root, "var/lib/dpkg/status"), "w") as f:
            f.write("Package: base-files\nStatus: install ok installed\nVersion: 12.4\n\n")
        with open(os.path.join(root, "usr/lib/os-release"), "w") as f:
            f.write(os_release)
        os.symlink("../usr/lib/os-release", os.path.join(root, "etc/os-release"))  # as Debian ships it


def build_disk(tmp: str) -> tuple[str, dict]:
    """A GPT raw disk: p1 a decoy ext4 (no os-release), p2 the root ext4, p3 swap."""
    raw = os.path.join(tmp, "disk.raw")
    with open(raw, "wb") as f:
        f.truncate(40 * MiB)
    run([tool("sfdisk"), "-q", raw], input='label: gpt\nsize=8MiB, name="data"\nsize=24MiB, name="root"\nname="swap", type=swap\n')
    ref = json.loads(run([tool("sfdisk"), "--json", raw]).stdout)["partitiontable"]
    pieces = []
    for i, part in enumerate(ref["partitions"], start=1):
        piece = os.path.join(tmp, f"p{i}.img")
        with open(piece, "wb") as f:
            f.truncate(part["size"] * 512)
        if i in (1, 2):
            tree = os.path.join(tmp, f"tree{i}")
            make_tree(tree, with_markers=(i == 2))
            run([tool("mkfs.ext4"), "-q", "-F", "-L", f"fs{i}", "-d", tree, piece])
        else:
            run([tool("mkswap"), "-L", "sw", piece])
        with open(piece, "rb") as src, open(raw, "r+b") as dst:
            dst.seek(part["start"] * 512)
            dst.write(src.read())
        pieces.append(piece)
    ref["blkid"] = {i + 1: blkid(p) for i, p in enumerate(pieces)}
    ref["dumpe2fs"] = dumpe2fs_features(pieces[1])
    for p in pieces:
        os.unlink(p)
    return raw, ref


def blkid(path: str) -> dict:
    out = run([tool("blkid"), "-p", "-o", "export", path], check=False).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def dumpe2fs_features(path: str) -> list[str]:
    out = run([tool("dumpe2fs"), "-h", path]).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("Filesystem features:"))
    return line.split(":", 1)[1].split()


@pytest.fixture(scope="session")
def disk(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("disk"))
    raw, ref = build_disk(tmp)
    qcow = os.path.join(tmp, "disk.qcow2")
    run([tool("qemu-img"), "convert", "-c", "-O", "qcow2", "-o", "compression_type=zstd", raw, qcow])
    return {"raw": raw, "qcow2": qcow, "ref": ref, "tmp": tmp}


def qemu_info(path: str, chain: bool = False) -> dict | list:
    args = [tool("qemu-img"), "info", "--output=json"] + (["--backing-chain"] if chain else []) + [path]
    return json.loads(run(args).stdout)


# --- the disk and its partitions -------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_partitions_and_filesystems(disk, fmt):
    ref = disk["ref"]
    with Image.open(disk[fmt]) as image:
        info = image.info()
        assert image.format == fmt
    assert info["format"] == fmt
    assert info["partition_table"]["scheme"] == "gpt"
    assert info["partition_table"]["disk_id"] == ref["id"]
    got = info["partitions"]
    assert [(p["start"], p["size"], p["type"], p["uuid"], p["name"]) for p in got] == [
        (p["start"], p["size"], p["type"], p["uuid"], p["name"]) for p in ref["partitions"]
    ]
    for p in got:
        want = ref["blkid"][p["number"]]
        assert (p["filesystem"]["type"], p["filesystem"]["uuid"], p["filesystem"]["label"]) == (
            want["TYPE"], want["UUID"], want.get("LABEL", "")
        )


def test_disk_facts_match_qemu_img(disk):
    q = qemu_info(disk["qcow2"])
    with Image.open(disk["qcow2"]) as image:
        info = image.info()
    assert info["virtual_size"] == q["virtual-size"]
    assert info["cluster_size"] == q["cluster-size"]
    spec = q["format-specific"]["data"]
    assert info["compression_type"] == spec["compression-type"]
    assert info["corrupt"] == spec["corrupt"]
    assert info["compat"] == spec["compat"]


def test_backing_chain_and_snapshots(disk, tmp_path):
    qemu_img = tool("qemu-img")
    mid = str(tmp_path / "mid.qcow2")
    top = str(tmp_path / "top.qcow2")
    run([qemu_img, "create", "-q", "-f", "qcow2", "-b", disk["qcow2"], "-F", "qcow2", mid])
    run([qemu_img, "snapshot", "-c", "before-patch", mid])
    run([qemu_img, "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2", top])
    chain = qemu_info(top, chain=True)
    with Image.open(top) as image:
        info = image.info()
        assert len(image.partitions) == 3  # read through two overlays
    assert [os.path.realpath(link["path"]) for link in info["backing_chain"]] == [
        os.path.realpath(c["filename"]) for c in chain[1:]
    ]
    with Image.open(mid) as image:
        snaps = image.info()["snapshots"]
    assert [s["name"] for s in snaps] == [s["name"] for s in qemu_info(mid)["snapshots"]]
    r = nuwa("info", mid)
    assert r.returncode == 0, r.stderr
    assert "before-patch" in r.stdout and f"backing file: {disk['qcow2']}" in r.stdout


def test_cli_text_and_json(disk):
    r = nuwa("info", disk["qcow2"])
    assert r.returncode == 0, r.stderr
    q = qemu_info(disk["qcow2"])
    assert f"virtual size: 40 MiB ({q['virtual-size']} bytes)" in r.stdout
    assert "file format: qcow2" in r.stdout and "compression type: zstd" in r.stdout
    assert "Partition table: gpt" in r.stdout
    for p in disk["ref"]["partitions"]:
        assert f"  {p['start']}  " in r.stdout and f"  {p['name']}  " in r.stdout
    rj = nuwa("info", "--json", disk["qcow2"])
    assert rj.returncode == 0, rj.stderr
    doc = json.loads(rj.stdout)
    with nuwa_api.open(disk["qcow2"]) as image:  # the CLI's Image: the API's, with the architecture
        assert doc == json.loads(json.dumps(image.info(), default=str))


def test_bad_gpt_cli_exit_3_and_file_untouched(disk, tmp_path):
    img = str(tmp_path / "bad.raw")
    with open(disk["raw"], "rb") as src, open(img, "wb") as dst:
        dst.write(src.read())
    last = os.path.getsize(img) // 512 - 1
    with open(img, "r+b") as f:
        for lba in (1, last):
            f.seek(lba * 512 + 16)  # header_crc32
            f.write(b"\0\0\0\0")
    before = file_sha256(img)
    r = nuwa("info", img)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "GPT header at LBA 1" in r.stderr and f"LBA {last}" in r.stderr
    assert "header CRC mismatch" in r.stderr
    assert file_sha256(img) == before
    with pytest.raises(CorruptImageError):
        Image.open(img)


def test_unknown_partition_number(disk):
    with pytest.raises(InvalidInputError, match="--partition 9 does not exist"):
        Image.open(disk["raw"], partition=9)
    r = nuwa("info", "--partition", "9", disk["raw"])
    assert r.returncode == 2 and "partitions: 1, 2, 3" in r.stderr


def test_missing_file():
    r = nuwa("info", "/nonexistent/disk.qcow2")
    assert r.returncode == 2 and "/nonexistent/disk.qcow2" in r.stderr


def test_swap_partition_is_not_a_root(disk):
    with Image.open(disk["raw"], partition=3) as image:
        info = image.info()
        with pytest.raises(InvalidInputError):
            image.root()
    assert "--partition 3 holds swap" in info["root"]["error"] and "ext2/ext3/ext4 only" in info["root"]["error"]
    r = nuwa("info", "--partition", "3", disk["raw"])
    assert r.returncode == 0 and "Root filesystem: not available" in r.stdout


def test_damaged_root_filesystem_exit_3(disk, tmp_path):
    """The only root candidate fails its superblock checksum: described, then exit 3."""
    need_ext4()
    img = str(tmp_path / "badroot.raw")
    with open(disk["raw"], "rb") as src, open(img, "wb") as dst:
        dst.write(src.read())
    p2 = disk["ref"]["partitions"][1]["start"] * 512
    with open(img, "r+b") as f:
        f.seek(p2 + 1024 + 0x78)  # s_volume_name, s_checksum left stale
        f.write(b"X")
    before = file_sha256(img)
    r = nuwa("info", img)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "Partition table: gpt" in r.stdout  # the disk is still described
    assert r.stderr.count("\n") == 1 and "s_checksum" in r.stderr
    assert file_sha256(img) == before


# --- the root filesystem (needs the ext4 engine) ---------------------------------------------


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_root_found_in_partition_2(disk, fmt):
    need_ext4()
    with Image.open(disk[fmt]) as image:
        assert image.root_volume().number == 2
        info = image.info()
        assert image.root().read_bytes("/var/lib/dpkg/status").startswith(b"Package: base-files")
    root = info["root"]
    want = disk["ref"]["blkid"][2]
    assert root["partition"] == 2 and root["type"] == "ext4"
    assert (root["label"], root["uuid"]) == (want["LABEL"], want["UUID"])
    assert sorted(root["features"]) == sorted(disk["ref"]["dumpe2fs"])
    assert root["os"] == {k: v for k, v in shell_os_release(OS_RELEASE).items()}


def test_partition_override_without_markers(disk):
    need_ext4()
    with Image.open(disk["raw"], partition=1) as image:
        assert image.root_volume().number == 1
        assert image.root().exists("/etc/hostname")


def test_bare_filesystem(tmp_path):
    need_ext4()
    tree = str(tmp_path / "tree")
    make_tree(tree, with_markers=True)
    img = str(tmp_path / "bare.ext4")
    run([tool("mkfs.ext4"), "-q", "-F", "-L", "bare", "-d", tree, img, "16M"])
    with Image.open(img) as image:
        info = image.info()
    assert info["partition_table"]["scheme"] is None and info["partitions"] == []
    assert info["filesystem"]["type"] == "ext4"
    assert info["root"]["partition"] is None and info["root"]["label"] == "bare"


def test_no_root_anywhere(tmp_path):
    need_ext4()
    tree = str(tmp_path / "tree")
    make_tree(tree, with_markers=False)
    img = str(tmp_path / "plain.ext4")
    run([tool("mkfs.ext4"), "-q", "-F", "-d", tree, img, "8M"])
    with Image.open(img) as image, pytest.raises(InvalidInputError, match="no root filesystem found"):
        image.root()


def test_default_image():
    """The README's first command works on the shipped image and finds Debian 12 in it."""
    if not os.path.exists(DEFAULT_IMAGE):
        pytest.skip("testimages/default.qcow2 is not built (tools/make_default_image.sh)")
    before = file_sha256(DEFAULT_IMAGE)
    r = nuwa("info", "--json", DEFAULT_IMAGE)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    q = qemu_info(DEFAULT_IMAGE)
    assert info["format"] == "qcow2" and info["virtual_size"] == q["virtual-size"]
    assert info["compression_type"] == "zstd"
    assert [p["number"] for p in info["partitions"]] == [1, 2]
    assert info["partitions"][1]["filesystem"]["type"] == "ext4"
    need_ext4()
    assert info["root"]["partition"] == 2
    assert info["root"]["os"]["id"] == "debian" and info["root"]["os"]["version_id"] == "12"
    assert info["root"]["os"]["version_codename"] == "bookworm"
    assert file_sha256(DEFAULT_IMAGE) == before


def test_default_image_has_the_pending_updates_apt_listed():
    """The packages apt said bookworm-security updates are installed, at the old version."""
    listing = os.path.join(TESTIMAGES, "default.security-updates.txt")
    if not os.path.exists(DEFAULT_IMAGE) or not os.path.exists(listing):
        pytest.skip("testimages/default.qcow2 is not built (tools/make_default_image.sh)")
    need_ext4()
    from debian.deb822 import Deb822

    pending = {}
    with open(listing) as f:
        for line in f:  # "Inst NAME [OLD] (NEW Debian-Security:... [arch])"
            words = line.split()
            pending[words[1]] = words[2].strip("[]")
    assert pending
    with Image.open(DEFAULT_IMAGE) as image:
        status = image.root().read_bytes("/var/lib/dpkg/status").decode()
    installed = {p["Package"]: p["Version"] for p in Deb822.iter_paragraphs(status.splitlines(True))
                 if p.get("Status") == "install ok installed"}
    assert {name: installed.get(name) for name in pending} == pending


# --- os-release parsing, judged by dash -------------------------------------------------------


def shell_os_release(text: str) -> dict:
    """What a shell sees after sourcing ``text`` (the os-release(5) contract), lower-case keys."""
    dash = tool("dash")
    keys = ("ID", "VERSION_ID", "PRETTY_NAME", "VERSION_CODENAME", "NAME", "VERSION", "ID_LIKE")
    script = "set -a; . /dev/stdin; " + "; ".join(f'[ -n "${{{k}+x}}" ] && printf "%s=%s\\0" {k} "${k}"' for k in keys) + "; true"
    out = subprocess.run([dash, "-c", script], input=text, capture_output=True, text=True, check=True).stdout
    return {k.lower(): v for k, v in (item.split("=", 1) for item in out.split("\0") if item)}


@pytest.mark.parametrize(
    "text",
    [
        OS_RELEASE,
        "ID=ubuntu\nVERSION_ID='22.04'\nPRETTY_NAME=\"Ubuntu 22.04.3 LTS\"\nID_LIKE=debian\n",
        '# comment\n\nNAME="A \\"quoted\\" \\$name"\nID=x\n',
        "ID=debian\nVERSION_CODENAME=trixie\nPRETTY_NAME='it''s'\n",
        'ID=a\\ b\nNAME="back\\nslash \\\\ \\`x\\`"\nVERSION=plain"mixed"\'quotes\'\n',
    ],
)
def test_parse_os_release_like_the_shell(text):
    want = shell_os_release(text)
    got = parse_os_release(text)
    assert {k.lower(): v for k, v in got.items() if k.lower() in want} == want


def test_writable_image_writes_through_partition_and_qcow2(disk, tmp_path):
    """A writable image opens its root writable; the write lands in partition 2 of the qcow2."""
    need_ext4()
    from judges import debugfs, e2fsck_clean, qemu_img_check, qemu_img_to_raw

    img = str(tmp_path / "rw.qcow2")
    with open(disk["qcow2"], "rb") as src, open(img, "wb") as dst:
        dst.write(src.read())
    with Image.open(img) as image:
        with pytest.raises(OSError) as exc:
            image.root().write_bytes("/etc/written-by-nuwa", b"x")
        assert exc.value.errno == 30  # EROFS: opened read-only
    with Image.open(img, writable=True) as image:
        image.root().write_bytes("/etc/written-by-nuwa", b"hello from nuwa\n")
    qemu_img_check(img)
    raw = str(tmp_path / "rw.raw")
    qemu_img_to_raw(img, raw)
    part = disk["ref"]["partitions"][1]
    p2 = str(tmp_path / "p2.img")
    with open(raw, "rb") as src, open(p2, "wb") as dst:
        src.seek(part["start"] * 512)
        dst.write(src.read(part["size"] * 512))
    e2fsck_clean(p2)
    assert debugfs(p2, "cat /etc/written-by-nuwa") == "hello from nuwa\n"
    with open(raw, "rb") as f:  # partition 1 untouched
        p1 = disk["ref"]["partitions"][0]
        f.seek(p1["start"] * 512)
        mine = f.read(p1["size"] * 512)
    with open(disk["raw"], "rb") as f:
        f.seek(p1["start"] * 512)
        assert f.read(p1["size"] * 512) == mine
