"""The CRC32C the ext4 engine uses: the ``crc32c`` package's C extension loaded without the
package's ``__init__`` (which reads distribution metadata at import; see nuwa/fs/ext4/crc.py).

It must be the same function: equal to the package's on random data and chained seeds, and
the check value of the CRC-32C catalogue; and a fresh process importing it must not have
imported the package (else the start-up cost is back)."""

from __future__ import annotations

import subprocess
import sys

import crc32c as package
from hypothesis import given, settings
from hypothesis import strategies as s

from nuwa.fs.ext4 import crc


def test_check_value():
    assert crc.crc32c(b"123456789") == 0xE3069283  # CRC-32C/ISCSI "check" in the CRC catalogue


@settings(max_examples=200, deadline=None)
@given(s.binary(max_size=300), s.integers(0, 0xFFFFFFFF))
def test_equals_the_package(data, seed):
    assert crc.crc32c(data) == package.crc32c(data)
    assert crc.crc32c(data, seed) == package.crc32c(data, seed)


def test_loading_it_does_not_import_the_package():
    code = ("import sys; import nuwa.fs.ext4.crc as c; "
            "assert c.crc32c(b'a') == 0xC1D04330; "
            "print('crc32c' in sys.modules, 'importlib.metadata' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
