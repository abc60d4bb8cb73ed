"""The depmod model against real depmod (kmod 30) run in a chroot of a copy of the kernel tree.

Both sides start from hard-linked copies of the same cached tree with the same changes made
(depmod.d files, extra, recompressed or hand-built modules); afterwards every output file,
depmod's stderr and its exit status must be the same. Bad input: a dependency loop (real
depmod reports it and writes nothing: so must the model), a truncated module (deferred with
the reason, nothing written).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from debian_tree import link_tree
from helpers.kerneltree import kernel_tree, kernel_versions
from helpers.kmodelf import build_module
from nuwa.fs.hostdir import HostDirFS
from nuwa.script.commands import default_models
from nuwa.script.commands.kmod.depmod_out import FILES
from nuwa.script.context import Defer, Invocation

MODELS = default_models()
pytestmark = [pytest.mark.judge, pytest.mark.root, pytest.mark.slow]


@pytest.fixture(scope="module")
def base():
    tree = kernel_tree()
    versions = kernel_versions(tree)
    assert versions, "the kernel tree has no /lib/modules/VERSION"
    return tree, versions[-1]


def _pair(base, tmp_path, change=None):
    tree, ver = base
    real, sim = link_tree(tree, str(tmp_path / "real")), link_tree(tree, str(tmp_path / "sim"))
    for root in (real, sim):
        if change:
            change(root, f"{root}/lib/modules/{ver}")
    return real, sim, ver


def _outputs(root: str, ver: str) -> dict[str, bytes | None]:
    d = f"{root}/lib/modules/{ver}"
    out = {}
    for name in FILES:
        p = os.path.join(d, name)
        out[name] = open(p, "rb").read() if os.path.exists(p) else None
    return out


def _model(root: str, argv: list[str]) -> tuple[int, bytes, bytes]:
    inv = Invocation(argv=argv, fs=HostDirFS(root, writable=True), models=MODELS)
    status = MODELS["depmod"](inv)
    return status, bytes(inv.stdout), bytes(inv.stderr)


def _judge(real: str, sim: str, ver: str, args: list[str]) -> tuple[int, bytes]:
    r = subprocess.run(["chroot", real, "depmod", *args], capture_output=True)
    status, out, err = _model(sim, ["depmod", *args])
    assert err.decode() == r.stderr.decode()
    assert status == r.returncode
    assert out == r.stdout
    want, got = _outputs(real, ver), _outputs(sim, ver)
    for name in FILES:
        assert got[name] == want[name], f"{name} differs"
    return status, r.stderr


def _clear(d: str) -> None:
    for name in FILES:
        if os.path.exists(os.path.join(d, name)):
            os.unlink(os.path.join(d, name))


def test_depmod_whole_tree_byte_identical(base, tmp_path):
    real, sim, ver = _pair(base, tmp_path, lambda root, d: _clear(d))
    status, _ = _judge(real, sim, ver, ["-a", ver])
    assert status == 0
    assert all(_outputs(sim, ver)[n] for n in ("modules.dep", "modules.alias.bin", "modules.symbols.bin"))


def test_depmod_with_system_map_and_errsyms(base, tmp_path):
    real, sim, ver = _pair(base, tmp_path)
    _judge(real, sim, ver, ["-a", "-e", "-F", f"/boot/System.map-{ver}", ver])


def _modules(d: str, n: int) -> list[str]:
    """``n`` modules of the tree chosen by their place in modules.order (spread, not a list)."""
    order = [ln.strip() for ln in open(os.path.join(d, "modules.order")) if ln.strip()]
    present = [p for p in order if os.path.exists(os.path.join(d, p))]
    step = max(1, len(present) // n)
    return present[::step][:n]


def test_depmod_d_override_search_exclude_and_bad_line(base, tmp_path):
    def change(root, d):
        picked = _modules(d, 6)
        os.makedirs(f"{d}/updates/x", exist_ok=True)
        os.makedirs(f"{d}/extra", exist_ok=True)
        os.makedirs(f"{d}/skipme", exist_ok=True)
        for rel in picked[:3]:  # same names in updates/ and extra/: priorities decide
            shutil.copy(f"{d}/{rel}", f"{d}/updates/x/")
            shutil.copy(f"{d}/{rel}", f"{d}/extra/")
        shutil.copy(f"{d}/{picked[3]}", f"{d}/skipme/")
        shutil.copy(f"{d}/{picked[4]}", f"{d}/extra/")
        name = os.path.basename(picked[0]).split(".")[0]
        os.makedirs(f"{root}/etc/depmod.d", exist_ok=True)
        with open(f"{root}/etc/depmod.d/test.conf", "w") as f:
            f.write("# test\nsearch extra updates built-in\n"
                    f"override {name} * extra\nexclude skipme\nfrobnicate all the things\n"
                    "include /nowhere\n")
        with open(f"{root}/etc/depmod.d/not-a-conf", "w") as f:
            f.write("garbage\n")
        _clear(d)

    real, sim, ver = _pair(base, tmp_path, change)
    _, err = _judge(real, sim, ver, [ver])
    assert b"ignoring bad line starting with 'frobnicate'" in err


def test_depmod_recompressed_modules(base, tmp_path):
    def change(root, d):
        picked = _modules(d, 40)
        for k, rel in enumerate(picked):
            tool = ["zstd", "-q", "-f", "--rm"] if k % 3 == 0 else ["xz", "-q", "-f"] if k % 3 == 1 else ["gzip", "-q", "-f"]
            subprocess.run([*tool, f"{d}/{rel}"], check=True)
        _clear(d)

    real, sim, ver = _pair(base, tmp_path, change)
    _judge(real, sim, ver, ["-a", ver])
    dep = _outputs(sim, ver)["modules.dep"].decode()
    assert ".ko.zst:" in dep and ".ko.xz:" in dep
    assert ".ko.gz" not in dep  # bookworm's kmod is built without zlib: .ko.gz is not a module


def test_depmod_hand_built_modules_all_elf_kinds(base, tmp_path):
    def change(root, d):
        os.makedirs(f"{d}/extra", exist_ok=True)
        kinds = [(64, False), (64, True), (32, False), (32, True)]
        for k, (bits, big) in enumerate(kinds):
            mods = {
                f"nuwa-a{k}": dict(exports=[f"nuwa_a{k}"], modinfo=[f"alias=nuwa-dev{k}*", "softdep=pre: crc32c"]),
                f"nuwa-b{k}": dict(needs=[f"nuwa_a{k}", "printk", "nosuchsym"], weak_needs=["weakgone"],
                                   exports=[f"nuwa_b{k}"], crcs={f"nuwa_b{k}": 0x1234 + k},
                                   versions=[("module_layout", 7), (f"nuwa_a{k}", 1)]),
                f"nuwa_c{k}": dict(needs=[f"nuwa_b{k}"], modinfo=["alias=devname:nuwa" + str(k),
                                                                      f"alias=char-major-{200 + k}-{k}"]),
            }
            for name, kw in mods.items():
                with open(f"{d}/extra/{name}.ko", "wb") as f:
                    f.write(build_module(name.replace("-", "_"), bits=bits, big=big, **kw))
        # an ELF that is not a module: listed, with nothing else
        shutil.copy(f"{root}/bin/true", f"{d}/extra/notamodule.ko")
        _clear(d)

    real, sim, ver = _pair(base, tmp_path, change)
    _judge(real, sim, ver, ["-a", "-e", "-F", f"/boot/System.map-{ver}", ver])
    dep = _outputs(sim, ver)["modules.dep"].decode()
    assert "extra/nuwa_c2.ko: extra/nuwa-b2.ko extra/nuwa-a2.ko\n" in dep
    assert "extra/notamodule.ko:\n" in dep


def test_depmod_dependency_loop_reports_and_writes_nothing(base, tmp_path):
    def change(root, d):
        os.makedirs(f"{d}/extra", exist_ok=True)
        ring = ["loopa", "loopb", "loopc"]
        for k, name in enumerate(ring):
            nxt = ring[(k + 1) % len(ring)]
            with open(f"{d}/extra/{name}.ko", "wb") as f:
                f.write(build_module(name, exports=[f"{name}_sym"], needs=[f"{nxt}_sym"]))
        with open(f"{d}/extra/loopuser.ko", "wb") as f:
            f.write(build_module("loopuser", needs=["loopa_sym"]))
        _clear(d)

    real, sim, ver = _pair(base, tmp_path, change)
    status, err = _judge(real, sim, ver, [ver])
    assert status == 1
    assert b"Cycle detected: " in err and b"Found 3 modules in dependency cycles!" in err
    assert all(v is None for v in _outputs(sim, ver).values())


def test_depmod_truncated_module_defers_and_writes_nothing(base, tmp_path):
    tree, ver = base
    sim = link_tree(tree, str(tmp_path / "sim"))
    d = f"{sim}/lib/modules/{ver}"
    rel = _modules(d, 3)[1]
    data = open(f"{d}/{rel}", "rb").read()
    os.unlink(f"{d}/{rel}")
    with open(f"{d}/{rel}", "wb") as f:
        f.write(data[:200])
    _clear(d)
    with pytest.raises(Defer) as exc:
        _model(sim, ["depmod", ver])
    assert rel in exc.value.reason and "not a readable kernel module" in exc.value.reason
    assert all(v is None for v in _outputs(sim, ver).values())


def test_depmod_quick_and_show(base, tmp_path):
    real, sim, ver = _pair(base, tmp_path)
    # -A with outputs newer than every module: nothing to do, nothing printed
    _judge(real, sim, ver, ["-A", ver])
    r = subprocess.run(["chroot", real, "depmod", "-n", ver], capture_output=True)
    status, out, err = _model(sim, ["depmod", "-n", ver])
    assert (status, out, err) == (r.returncode, r.stdout, r.stderr)


def test_depmod_defers_without_version_and_for_other_kmod(base, tmp_path):
    tree, ver = base
    sim = link_tree(tree, str(tmp_path / "sim"))
    with pytest.raises(Defer, match="running kernel"):
        _model(sim, ["depmod", "-a"])
    status = open(f"{sim}/var/lib/dpkg/status").read()
    os.unlink(f"{sim}/var/lib/dpkg/status")
    with open(f"{sim}/var/lib/dpkg/status", "w") as f:
        f.write(status.replace("Package: kmod\nStatus: install ok installed\n",
                               "Package: kmod\nStatus: install ok installed\n", 1)
                .replace("Version: 30+20221128-1", "Version: 34.2-2", 1))
    with pytest.raises(Defer, match="kmod 34.2 is not modelled"):
        _model(sim, ["depmod", ver])


def test_depmod_runs_in_a_maintainer_script_through_the_images_path(base, tmp_path):
    """The kernel postinst's ``depmod VERSION`` is simulated (the image's /sbin/depmod is a
    link to /bin/kmod: the model is found by the name the script calls), into an overlay."""
    from nuwa.fs.overlay import Overlay
    from nuwa.script.interp import run_script
    from nuwa.script.record import SIMULATED

    tree, ver = base
    sim = link_tree(tree, str(tmp_path / "sim"))
    d = f"{sim}/lib/modules/{ver}"
    want = open(f"{d}/modules.dep.bin", "rb").read()  # written by real depmod when the tree was made
    _clear(d)
    fs = Overlay(HostDirFS(sim))
    r = run_script(fs, f"set -e\ndepmod {ver}\nmodprobe --all --set-version={ver} -q -D ext4 >/dev/null\n",
                   ["configure"], name="postinst", models=MODELS)
    assert r.status == 0 and not r.deferred_commands
    assert [e.classification for e in r.record.entries if e.kind == "external"] == [SIMULATED, SIMULATED]
    assert fs.read_bytes(f"/lib/modules/{ver}/modules.dep.bin") == want
    assert not os.path.exists(f"{d}/modules.dep.bin")  # nothing reached the tree before commit


def test_image_kmod_answers_follow_the_files(base):
    """The version and compressions of the image's kmod are memoised by the files' bytes: a
    status file or a /bin/kmod that changed (same length, in place) is read again, and the
    answer is the new one, in either order of asking."""
    from nuwa.fs.memory import MemoryFS
    from nuwa.script.commands.kmod import depmod_cfg

    tree, _ver = base
    status = open(f"{tree}/var/lib/dpkg/status", "rb").read()
    kmod = open(f"{tree}/bin/kmod", "rb").read()
    assert b"libzstd.so" in kmod and b"Version: 30+20221128-1" in status
    fs = MemoryFS()
    fs.makedirs("/var/lib/dpkg")
    fs.makedirs("/bin")
    inv = Invocation(argv=["modinfo"], fs=fs, models=MODELS)
    for _ in range(2):
        fs.write_bytes("/var/lib/dpkg/status", status)
        fs.write_bytes("/bin/kmod", kmod)
        assert depmod_cfg.image_kmod(inv) == ("30", frozenset({"xz", "zstd"}))
        fs.write_bytes("/var/lib/dpkg/status", status.replace(b"Version: 30+20221128-1", b"Version: 31+20221128-1"))
        fs.write_bytes("/bin/kmod", kmod.replace(b"libzstd.so", b"libzsxd.so"))
        assert depmod_cfg.kmod_version(inv) == "31"
        assert depmod_cfg.kmod_features(inv) == frozenset({"xz"})
