"""The GRUB family: grub-probe and grub-mkrelpath from a disk description, the guest's /dev,
grub-script-check, grub-editenv, gettext, what is deferred, and the kernel's zz-update-grub hook.

The byte-for-byte judge of the whole ``update-grub`` run against the real one on a
loop-attached disk is tests/patch/test_update_grub.py. Here: the rules that run does not reach
(other disk names, device.map, /boot on its own partition, LVM/RAID/LUKS), and differential
checks against the real ``grub-script-check`` and ``gettext``.
"""

from __future__ import annotations

import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree, kernel_versions
from judges import tool
from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.memory import MemoryFS
from nuwa.fs.overlay import Overlay
from nuwa.script.commands import default_models
from nuwa.script.commands.grub.tools import check_grub_script, new_envblk
from nuwa.script.context import Defer, Invocation
from nuwa.script.disklayout import STATE_KEY, DiskLayout, VolumeFacts, disk_name, split_device
from nuwa.script.interp import run_script

MODELS = default_models()
UUID = "5e1f0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"
GPT = DiskLayout("gpt", (VolumeFacts(1, part_type="21686148-6453-6F6E-6E61-6C6D61726B7E",
                                     partuuid="d047fd29-3354-5343-ba1a-4b14978f4d89"),
                         VolumeFacts(2, "ext4", UUID, "root", "f466a8ac-6501-5748-ad7e-8b1ab6f4197a",
                                     "0FC63DAF-8483-4772-8E79-3D69D8477DE4")), root=2)
MBR = DiskLayout("msdos", (VolumeFacts(1, "ext4", UUID, "", "4e757761-01", "83"),
                           VolumeFacts(5, "swap", "0b3d8a55-2f60-4c1e-9d0e-7d6c2b1a0f00", "", "4e757761-05", "82",
                                       logical=True)), root=1)


def image_fs(files: dict[str, bytes] | None = None) -> Overlay:
    """A small image: programs present (never run: models answer), /boot, /etc."""
    m = MemoryFS()
    for d in ("/usr/sbin", "/usr/bin", "/bin", "/boot/grub", "/etc/default", "/dev", "/tmp", "/usr/share/grub"):
        m.makedirs(d)
    for prog in ("usr/sbin/grub-probe", "usr/bin/grub-mkrelpath", "usr/bin/grub-script-check",
                 "usr/bin/grub-editenv", "usr/sbin/grub-install", "usr/bin/gettext", "usr/bin/readlink", "usr/bin/ls"):
        m.write_bytes("/" + prog, b"\x7fELF\x02\x01\x01", 0o755)
    m.write_bytes("/boot/vmlinuz-6.1.0-50-cloud-amd64", b"kernel")
    m.symlink("boot/vmlinuz-6.1.0-50-cloud-amd64", "/vmlinuz")
    for path, data in (files or {}).items():
        m.makedirs(path.rsplit("/", 1)[0])
        m.write_bytes(path, data)
    return Overlay(m)


def sh(fs, text: str, layout: DiskLayout | None = GPT, env: dict | None = None):
    state = {STATE_KEY: layout} if layout is not None else {}
    return run_script(fs, text, [], env=env or {"PATH": "/usr/sbin:/usr/bin:/bin", "LANG": "C"},
                      model_state=state, models=MODELS)


def probe(fs, args: list[str], layout: DiskLayout = GPT):
    inv = Invocation(["grub-probe", *args], fs, state={STATE_KEY: layout}, models=MODELS)
    st = MODELS["grub-probe"](inv)
    return st, inv.stdout.decode(), inv.stderr.decode()


# --- grub-probe -------------------------------------------------------------------------------

@pytest.mark.parametrize("target, out", [
    ("device", "/dev/vda2\n"), ("disk", "/dev/vda\n"), ("fs", "ext2\n"), ("fs_uuid", UUID + "\n"),
    ("fs_label", "root\n"), ("partmap", "gpt\n"), ("abstraction", ""), ("cryptodisk_uuid", ""),
    ("partuuid", "f466a8ac-6501-5748-ad7e-8b1ab6f4197a\n"), ("drive", "(hostdisk//dev/vda,gpt2)\n"),
    ("compatibility_hint", ""), ("hints_string", "\n"), ("bios_hints", "\n"),
    ("gpt_parttype", "0fc63daf-8483-4772-8e79-3d69d8477de4\n"), ("msdos_parttype", "\n"),
])
def test_probe_targets_for_a_virtio_disk(target, out):
    st, o, e = probe(image_fs(), [f"--target={target}", "/boot/vmlinuz-6.1.0-50-cloud-amd64"])
    assert (st, o) == (0, out)
    # ofpath.c knows no "vd" device: the real program warns (scripts send it to /dev/null)
    assert e == ("grub-probe: warning: unknown device type vda.\n" if target == "hints_string" else "")


def test_probe_hints_follow_grubs_guesses_for_sd_disks():
    fs = image_fs({"/boot/grub/grub.cfg": b"linux /vmlinuz root=/dev/sda1 ro\n"})
    assert disk_name(MBR, fs) == ("/dev/sda", "/boot/grub/grub.cfg")
    assert probe(fs, ["-t", "hints_string", "/"], MBR)[1] == \
        "--hint-bios=hd0,msdos1 --hint-efi=hd0,msdos1 --hint-baremetal=ahci0,msdos1 \n"
    assert probe(fs, ["-t", "compatibility_hint", "/"], MBR)[1] == "hd0,msdos1\n"
    assert probe(fs, ["-t", "baremetal_hints", "/"], MBR)[1] == "ahci0,msdos1 \n"
    assert probe(fs, ["-t", "msdos_parttype", "/"], MBR)[1] == "83\n"
    assert probe(fs, ["-t", "partuuid", "-d", "/dev/sda5"], MBR)[1] == "4e757761-05\n"


def test_probe_device_map_names_the_drive():
    fs = image_fs({"/boot/grub/device.map": b"(hd0)\t/dev/xvda\n"})
    assert disk_name(GPT, fs)[0] == "/dev/xvda"
    assert probe(fs, ["-t", "drive", "/"])[1] == "(hd0,gpt2)\n"
    assert probe(fs, ["-t", "compatibility_hint", "/"])[1] == "hd0,gpt2\n"
    assert probe(fs, ["-t", "hints_string", "/"])[1] == "--hint='hd0,gpt2' \n"


def test_disk_name_rules_in_order():
    assert disk_name(GPT, image_fs()) == ("/dev/vda", "the default (a virtio disk)")
    fstab = b"# <file system> <mount point> <type>\n/dev/nvme0n1p2 / ext4 defaults 0 1\n"
    assert disk_name(GPT, image_fs({"/etc/fstab": fstab}))[0] == "/dev/nvme0n1"
    debconf = (b"Name: grub-pc/install_devices\nTemplate: grub-pc/install_devices\nValue: /dev/sdb\n"
               b"Owners: grub-pc\n\n")
    fs = image_fs({"/etc/fstab": fstab, "/var/cache/debconf/config.dat": debconf})
    assert disk_name(GPT, fs) == ("/dev/sdb", "debconf grub-pc/install_devices")
    # a by-id link is not a kernel name: the next rule decides
    fs = image_fs({"/etc/fstab": fstab, "/var/cache/debconf/config.dat": debconf.replace(
        b"/dev/sdb", b"/dev/disk/by-id/ata-QEMU_HARDDISK_QM00001")})
    assert disk_name(GPT, fs)[0] == "/dev/nvme0n1"
    # a grub.cfg written on the build host's loop device does not name the guest's disk
    assert disk_name(GPT, image_fs({"/boot/grub/grub.cfg": b"\tlinux /vmlinuz root=/dev/loop0p2 ro\n"}))[0] == \
        "/dev/vda"
    assert split_device("/dev/nvme0n1p2") == ("/dev/nvme0n1", 2) and split_device("/dev/vda12") == ("/dev/vda", 12)
    assert split_device("/dev/mapper/vg-root") is None


def test_probe_device_arguments_and_errors():
    fs = image_fs()
    assert probe(fs, ["-d", "/dev/vda2", "/dev/vda1", "-t", "partuuid"])[1] == \
        "f466a8ac-6501-5748-ad7e-8b1ab6f4197a\nd047fd29-3354-5343-ba1a-4b14978f4d89\n"
    assert probe(fs, ["--device", f"/dev/disk/by-uuid/{UUID}", "--target=device"])[1] == "/dev/vda2\n"
    assert probe(fs, ["-d", "/dev/vda1", "-t", "fs"]) == (1, "", "grub-probe: error: unknown filesystem.\n")
    assert probe(fs, ["-t", "device", "/nonexistent"]) == \
        (1, "", "grub-probe: error: failed to get canonical path of `/nonexistent'.\n")
    st, _, err = probe(fs, [])
    assert st == 64 and err.startswith("No path or device is specified.\nUsage: grub-probe")
    assert probe(fs, ["-t", "bogus", "/"])[0] == 64
    for args in (["-d", "/dev/sdb1"], ["-t", "zero_check", "/"], ["-m", "/tmp/map", "/"]):
        with pytest.raises(Defer):
            probe(fs, args)


@pytest.mark.parametrize("files, why", [
    ({"/etc/fstab": b"UUID=1234 /boot ext4 defaults 0 2\n"}, "/boot (UUID=1234, ext4), a filesystem other than"),
    ({"/etc/fstab": b"/dev/mapper/vg-root / ext4 defaults 0 1\n"}, "device-mapper"),
    ({"/etc/fstab": b"/dev/vg0/root / ext4 defaults 0 1\n"}, "LVM logical volume"),
    ({"/etc/fstab": b"/dev/md0 / ext4 defaults 0 1\n"}, "software RAID"),
    ({"/etc/mdadm/mdadm.conf": b"ARRAY /dev/md0 metadata=1.2 UUID=a:b:c:d\n"}, "software RAID"),
])
def test_layouts_grub_probe_cannot_describe_defer_update_grub_whole(files, why):
    fs = image_fs(files)
    with pytest.raises(Defer) as exc:
        probe(fs, ["-t", "device", "/boot/vmlinuz-6.1.0-50-cloud-amd64"])
    assert why in exc.value.reason
    # in a script whose output is used, the whole script goes to first boot, with the reason
    r = sh(fs, 'dev="$(grub-probe -t device /boot/vmlinuz-6.1.0-50-cloud-amd64)"\necho "$dev"\n')
    assert r.deferred_whole and why in r.reason


def test_luks_in_crypttab_defers():
    lay = DiskLayout("gpt", GPT.volumes + (VolumeFacts(3, "crypto_LUKS", "77", "", "aa"),), root=2)
    fs = image_fs({"/etc/crypttab": b"# comment\ncrypt UUID=77 none luks\n"})
    with pytest.raises(Defer, match="LUKS"):
        probe(fs, ["-t", "fs", "/"], lay)


def test_without_a_disk_description_grub_probe_is_deferred():
    r = sh(image_fs(), "grub-probe -t device /\n", layout=None)
    assert [d.argv for d in r.deferred_commands] == [["grub-probe", "-t", "device", "/"]]
    assert "no description of the image's disk" in r.deferred_commands[0].reason


# --- grub-mkrelpath, the guest's /dev -----------------------------------------------------------

def test_mkrelpath_is_the_canonical_path_on_the_root_filesystem():
    r = sh(image_fs(), "grub-mkrelpath /vmlinuz; grub-mkrelpath /boot/; grub-mkrelpath /usr/../etc/.\n"
                       "grub-mkrelpath /nope; echo $?\n")
    assert r.stdout == b"/boot/vmlinuz-6.1.0-50-cloud-amd64\n/boot\n/etc\n1\n"
    assert r.stderr == b"grub-mkrelpath: error: failed to get canonical path of `/nope'.\n"


def test_guest_dev_view_shows_udev_links_and_writes_nothing():
    fs = image_fs()
    r = sh(fs, f"test -e /dev/disk/by-uuid/{UUID} && echo uuid\nreadlink /dev/disk/by-uuid/{UUID}\n"
               "readlink -f /dev/disk/by-partuuid/d047fd29-3354-5343-ba1a-4b14978f4d89\n"
               "test -b /dev/vda2 && echo blk\ntest -e /dev/vda3 || echo none\nls /dev/disk/by-label\n")
    assert r.stdout == b"uuid\n../../vda2\n/dev/vda1\nblk\nnone\nroot\n", r.stderr
    assert not [c for c in fs.changes() if c.path.startswith("/dev")]
    # without a layout (nuwa sh on a bare filesystem model), /dev is the image's own
    assert sh(image_fs(), f"test -e /dev/disk/by-uuid/{UUID} || echo absent\n", layout=None).stdout == b"absent\n"


# --- grub-script-check, grub-editenv, gettext, deferred programs ---------------------------------

GOOD = ("if [ -s $prefix/grubenv ]; then\n  load_env\nfi\nfunction f {\n  echo 'a } b'\n}\n"
        "menuentry 'x' --class os $menuentry_id_option 'id' {\n\tlinux /vmlinuz root=UUID=1 ro \"a b\"\n}\n"
        "submenu 'y' {\n  for i in 1 2; do echo $i; done\n}\nwhile false; do true; done # c\n")
BAD = ("if true; then\n echo x\n", "menuentry 'x' {\n linux /v\n", "echo 'open\n", "fi\n", "done\n")


def test_script_check_agrees_with_the_real_one():
    tree = kernel_tree()
    chroot = tool("chroot")
    for text, ours in [(GOOD, None)] + [(b, "x") for b in BAD]:
        real = subprocess.run([chroot, tree, "grub-script-check"], input=text.encode(), capture_output=True)
        assert (real.returncode == 0) == (check_grub_script(text) is None), (text, real.stderr)
        assert (check_grub_script(text) is None) == (ours is None)


def test_script_check_model_passes_good_and_defers_bad():
    fs = image_fs({"/tmp/good.cfg": GOOD.encode(), "/tmp/bad.cfg": BAD[0].encode()})
    r = sh(fs, "grub-script-check /tmp/good.cfg && echo ok\ngrub-script-check /tmp/bad.cfg\n")
    assert r.stdout == b"ok\n"
    assert r.deferred_commands[0].argv == ["grub-script-check", "/tmp/bad.cfg"]


def test_editenv_list_creates_the_block_like_debian():
    fs = image_fs()
    r = sh(fs, "grub-editenv - list; echo $?; grub-editenv /boot/grub/grubenv list\n")
    assert r.stdout == b"0\n"
    block = fs.read_bytes("/boot/grub/grubenv")
    assert block == new_envblk() and len(block) == 1024
    assert block.startswith(b"# GRUB Environment Block\n# WARNING: Do not edit this file by tools other than "
                            b"grub-editenv!!!\n###")
    fs.write_bytes("/boot/grub/grubenv", (b"# GRUB Environment Block\nsaved_entry=gnulinux-x\nrecordfail=1\n"
                                          + b"#" * 1024)[:1024])
    assert sh(fs, "grub-editenv - list\n").stdout == b"saved_entry=gnulinux-x\nrecordfail=1\n"
    with pytest.raises(Defer):
        MODELS["grub-editenv"](Invocation(["grub-editenv", "-", "set", "a=b"], fs))


@pytest.mark.parametrize("args", [["Warning:"], ["grub", "Generating grub configuration file ..."],
                                  ["-s", "a", "b"], ["-n", "-s", "a"], ["-e", "x\\ty"], ["-s", "-e", "a\\cb", "c"]])
def test_gettext_in_the_c_locale_equals_the_real_one(args):
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TEXTDOMAIN": "grub"}
    real = subprocess.run([tool("gettext"), *args], capture_output=True, env=env)
    inv = Invocation(["gettext", *args], MemoryFS(), env=env)
    assert (MODELS["gettext"](inv), bytes(inv.stdout)) == (real.returncode, real.stdout)


def test_gettext_in_another_locale_is_deferred():
    with pytest.raises(Defer, match="de_DE.UTF-8"):
        MODELS["gettext"](Invocation(["gettext", "Warning:"], MemoryFS(), env={"LANG": "de_DE.UTF-8"}))


def test_detect_virt_answers_for_a_disk_image_only():
    fs = image_fs()
    fs.write_bytes("/usr/bin/systemd-detect-virt", b"\x7fELF\x02\x01\x01", 0o755)
    r = sh(fs, "systemd-detect-virt --container; echo $?; systemd-detect-virt -qc; echo $?\n"
               "systemd-detect-virt --chroot; echo $?\n")
    assert r.stdout == b"none\n1\n1\n1\n" and not r.deferred_commands
    assert sh(fs, "systemd-detect-virt --vm\n").deferred_commands
    assert sh(fs, "systemd-detect-virt -c\n", layout=None).deferred_commands


def test_grub_install_and_os_prober_are_deferred_with_their_reason():
    fs = image_fs({"/usr/bin/os-prober": b"#!/usr/bin/perl\n"})
    fs.chmod("/usr/bin/os-prober", 0o755)
    r = sh(fs, "grub-install /dev/vda\necho after\n")
    assert r.stdout == b"after\n"
    assert "writes boot code" in r.deferred_commands[0].reason
    r = sh(fs, 'x="$(os-prober | tr " " "^")"\n')
    assert r.deferred_whole and "os-prober probes" in r.reason


# --- the kernel's hook, offline -----------------------------------------------------------------

@pytest.mark.parametrize("systemd", [False, True])
def test_zz_update_grub_hook_runs_offline(tmp_path, systemd):
    tree = link_tree(kernel_tree(), str(tmp_path / "tree"))
    version = kernel_versions(tree)[-1]
    fs = Overlay(HostDirFS(tree))
    fs.write_bytes("/boot/grub/grub.cfg", b"# the old one\n")  # the hook runs only if a grub.cfg exists
    if systemd:  # the hook asks systemd-detect-virt --quiet --container (never run: the model answers)
        fs.write_bytes("/usr/bin/systemd-detect-virt", b"\x7fELF\x02\x01\x01", 0o755)
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "DEB_MAINT_PARAMS": "'configure'"}
    r = run_script(fs, "/etc/kernel/postinst.d/zz-update-grub", [version, f"/boot/vmlinuz-{version}"],
                   env=env, name="/etc/kernel/postinst.d/zz-update-grub", model_state={STATE_KEY: GPT},
                   models=MODELS)
    assert r.status == 0 and not r.deferred_whole and not r.deferred_commands, (r.reason, r.stderr)
    cfg = fs.read_bytes("/boot/grub/grub.cfg")
    assert f"linux\t/boot/vmlinuz-{version} root=UUID={UUID} ro  quiet".encode() in cfg
    assert f"Found linux image: /boot/vmlinuz-{version}".encode() in r.stderr
