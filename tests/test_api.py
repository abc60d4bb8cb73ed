"""The public Python API (nuwa/api.py, docs/api.md).

The ```python blocks of docs/api.md run in order, sharing one namespace, in a scratch directory
holding a link to testimages/ (so they write only there); the shipped image must come out
byte-identical and every qcow2 they wrote must pass ``qemu-img check``. The API's documents
must be the ones the command line prints, and ``import nuwa`` / ``nuwa --help`` must not load
the image code or the shell simulator.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys

import pysequoia
import pytest

from helpers.cli import nuwa as nuwa_cli
from helpers.hashing import file_sha256
from helpers.paths import DEFAULT_IMAGE, REPO, TESTIMAGES
from judges import qemu_img_check

IMAGE = DEFAULT_IMAGE
DEBS = sorted(glob.glob(os.path.join(TESTIMAGES, "updates", "*.deb")))


def _blocks() -> list[str]:
    text = open(os.path.join(REPO, "docs", "api.md"), encoding="utf-8").read()
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def test_docs_api_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _blocks()
    assert len(blocks) >= 5, "docs/api.md lost its examples"
    os.symlink(TESTIMAGES, tmp_path / "testimages")
    # repo/: the three updates, signed, as Debian's security archive offers them (docs/api.md)
    from helpers.aptrepo import build_repo

    repo = build_repo(str(tmp_path / "repo"), DEBS, suite="bookworm-security", codename="bookworm-security",
                      origin="Debian", label="Debian-Security")
    repo.write_key(str(tmp_path / "repo" / "key.asc"))
    before = file_sha256(IMAGE)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_api"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/api.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out
    assert "upgrade xz-utils 5.4.1-1+deb12u1 -> 5.4.1-1+deb12u2" in out
    assert "output exists" in out
    assert file_sha256(IMAGE) == before
    written = sorted(p.name for p in tmp_path.iterdir() if p.name not in ("testimages", "repo"))
    assert written == ["cache", "deferred.qcow2", "mine.qcow2", "motd.qcow2", "patch-report.json", "patched.qcow2"]
    for name in ("deferred.qcow2", "mine.qcow2", "motd.qcow2", "patched.qcow2"):
        qemu_img_check(str(tmp_path / name))
    assert json.load(open(tmp_path / "patch-report.json")) == namespace["doc"]


def test_api_documents_are_the_cli_documents(tmp_path):
    import nuwa
    from nuwa import api

    out = str(tmp_path / "p.qcow2")
    r = nuwa_cli("patch", IMAGE, "--deb", *DEBS, "--output", out, "--json")
    assert r.returncode == 0, r.stderr
    cli_patch = json.loads(r.stdout)
    with nuwa.open(IMAGE) as image:
        doc = image.patch(debs=DEBS, dry_run=True).to_json()
    # a dry run of the same job: the same actions, scripts and changed paths, nothing written
    assert doc["packages"] == cli_patch["packages"] and doc["counts"] == cli_patch["counts"]
    assert [c["path"] for c in doc["changes"]] == [c["path"] for c in cli_patch["changes"]]
    assert doc["written"] is None and cli_patch["written"] == {"path": out, "in_place": False}

    r = nuwa_cli("packages", out, "--json")
    assert r.returncode == 0, r.stderr
    with nuwa.open(out) as image:
        assert image.packages() == json.loads(r.stdout)

    r = nuwa_cli("diff", IMAGE, out, "--json")
    assert r.returncode == 0, r.stderr
    assert api.diff(IMAGE, out).to_json() == json.loads(r.stdout)
    r = nuwa_cli("diff", IMAGE, out)
    assert r.stdout == api.diff(IMAGE, out, hashes=False).text()


def test_in_place_needs_a_writable_image_and_nothing_is_left(tmp_path):
    import nuwa

    with nuwa.open(IMAGE) as image:
        with pytest.raises(nuwa.InvalidInputError, match="writable"):
            image.sh("true", in_place=True)
        with pytest.raises(nuwa.InvalidInputError, match="nothing to apply"):
            image.patch(debs=[], output=str(tmp_path / "x.qcow2"))
        one = image.patch(debs=DEBS[0], dry_run=True)  # a single path is one .deb
        assert [d["file"] for d in one.to_json()["debs"]] == [DEBS[0]]
        bad = tmp_path / "bad.deb"
        bad.write_bytes(b"not an ar archive")
        with pytest.raises(nuwa.InvalidInputError):
            image.patch(debs=[*DEBS, str(bad)], output=str(tmp_path / "y.qcow2"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.deb"]


def test_import_and_help_stay_light():
    code = ("import sys, nuwa, nuwa.cli; nuwa.cli.build_parser().format_help(); "
            "print(sorted(m for m in sys.modules if m.startswith('nuwa')))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0, r.stderr
    loaded = eval(r.stdout)
    assert loaded == ["nuwa", "nuwa.cli", "nuwa.errors"], loaded


def test_a_deb_run_loads_no_repository_code_and_no_python_debian():
    """``.deb`` files alone: apt's repository code (OpenPGP, HTTP) and python-debian (asked
    only about paragraphs that are not plain, nuwa.deb.control) stay unloaded."""
    code = ("import sys, nuwa; r = nuwa.open(sys.argv[1]).patch(debs=sys.argv[2:], dry_run=True); "
            "print(len(r.to_json()['debs']), [m for m in ('nuwa.apt.repository', 'debian.deb822') if m in sys.modules])")
    r = subprocess.run([sys.executable, "-c", code, IMAGE, *DEBS], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=REPO))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split(None, 1) == [str(len(DEBS)), "[]\n"], r.stdout


def test_scan_offline_with_an_empty_cache_is_one_clear_line(tmp_path):
    # the default image names a real archive but holds no archive key: said in one line
    r = nuwa_cli("scan", IMAGE, "--offline", "--cache", str(tmp_path / "cache"))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and "no trusted key" in r.stderr, r.stderr
    # given a key, --offline must not reach the archive, and says what is missing
    key = tmp_path / "k.asc"
    key.write_text(str(pysequoia.Tsk.generate("t <t@example.invalid>").extract_certificate()))
    r = nuwa_cli("scan", IMAGE, "--offline", "--cache", str(tmp_path / "cache"), "--keyring", str(key))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "--offline" in r.stderr and "InRelease" in r.stderr, r.stderr
