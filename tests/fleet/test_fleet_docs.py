"""The examples of docs/fleet.md run, and ``nuwa patch``'s fleet options are what they say.

The ```python blocks of docs/fleet.md run in order, sharing one namespace, in a scratch
directory holding a link to testimages/ (so they write only there); the shipped image comes
out byte-identical and every overlay they wrote passes ``qemu-img check``.
"""

from __future__ import annotations

import os
import re

from helpers.hashing import file_sha256
from helpers.paths import DEFAULT_IMAGE, REPO, TESTIMAGES
from judges import qemu_img_check


def _blocks() -> list[str]:
    text = open(os.path.join(REPO, "docs", "fleet.md"), encoding="utf-8").read()
    return re.findall(r"^```python\n(.*?)^```", text, re.M | re.S)


def test_docs_fleet_examples_run(tmp_path, monkeypatch, capsys):
    blocks = _blocks()
    assert len(blocks) >= 4, "docs/fleet.md lost its examples"
    os.symlink(TESTIMAGES, tmp_path / "testimages")
    before = file_sha256(DEFAULT_IMAGE)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "docs_fleet"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"docs/fleet.md block {i + 1}", "exec"), namespace)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "{'patched': 3, 'up-to-date': 0, 'kept-back': 0, 'failed': 0}"
    assert out[1] == "0"
    assert out[2] == "fleet/vm0.qcow2 patched " + str(tmp_path / "out" / "vm0.qcow2") + " 3"
    assert "('xz-utils', '5.4.1-1+deb12u2')" in out[5]
    assert out[6:9] == ["3", "3", "['vm0.qcow2', 'vm1.qcow2', 'vm2.qcow2']"]
    assert out[9] == "{'patched': 3, 'up-to-date': 0, 'kept-back': 0, 'failed': 1}"
    assert out[10] == "3" and out[11].startswith("qcow2 header @0x0 (magic): truncated header")
    assert file_sha256(DEFAULT_IMAGE) == before
    for name in os.listdir(tmp_path / "out"):
        qemu_img_check(str(tmp_path / "out" / name))
    assert sorted(os.listdir(tmp_path / "fleet")) == ["broken.qcow2", "vm0.qcow2", "vm1.qcow2", "vm2.qcow2"]
