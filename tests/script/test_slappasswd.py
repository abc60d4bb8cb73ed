"""``slappasswd`` against OpenLDAP 2.5.13's real one in a chroot of a bookworm tree with slapd.

What is deterministic ({SHA}, {MD5}, {CLEARTEXT}, every error and usage text, ``-T`` files and
their warning) is compared byte for byte with the status. The salted schemes and ``-g`` are
random on both sides: both outputs are checked for form, and each salted hash is verified by
decoding it and recomputing the digest over the password and the salt it carries (the real
program's too, so the check itself is checked).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re

import pytest

from nuwa.script.commands.server.slappasswd import CRYPT64
from nuwa.script.context import Defer
from registry_harness import Pair, write

pytestmark = [pytest.mark.judge, pytest.mark.root]


class SlapdPair(Pair):
    PACKAGES = ("slapd",)
    DIRS = ["tmp"]
    FILES: list[str] = []


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("chroot needs root")
    return SlapdPair(str(tmp_path_factory.mktemp("slappasswd")))


def _files(root: str) -> None:
    write(root, "tmp/pw-nl", b"pw\n", 0o600)
    write(root, "tmp/pw", b"pw", 0o600)
    write(root, "tmp/empty", b"", 0o600)
    write(root, "tmp/public", b"s3cret\n", 0o606)
    write(root, "tmp/nul", b"a\0b", 0o600)
    write(root, "tmp/brace", b"{x}y", 0o600)


SAME = [
    ["-h", "{SHA}", "-s", "secret"], ["-h", "{sha}", "-s", "secret"], ["-h", "{MD5}", "-s", "secret"],
    ["-h{md5}", "-s", "p\u00e4ss w\u00f6rd"], ["-n", "-h", "{SHA}", "-s", "x"], ["-v", "-u", "-h", "{SHA}", "-s", "a"],
    ["-h", "{CLEARTEXT}", "-s", "secret"], ["-h", "{cleartext}", "-s", "{}y"], ["-h", "{CLEARTEXT}", "-s", "{x}y"],
    ["-h", "{LANMAN}", "-s", "a"], ["-h", "{UNIX}", "-s", "a"], ["-h", "{FOO}", "-s", "a"], ["-h", "SHA", "-s", "a"],
    ["-s"], ["-x"], ["-f", "slapd.conf"], ["-d", "1", "-s", "a"], ["-s", "a", "b"], ["-s", "x", "--", "y"],
    ["-s", ""], ["-h", "{SHA}", "-s", ""], ["-h", "{SHA}", "-h", "{MD5}", "-s", "a"], ["-s", "a", "-s", "b"],
    ["-s", "a", "-g"], ["-c", "x", "-h", "{SHA}", "-s", "a"], ["-o", "bar=1", "-s", "a"],
    ["-o", "module-pathx=1", "-s", "a"], ["-o", "module-path=/nonexistent", "-h", "{SHA}", "-s", "a"],
    ["-o", "foo", "-h", "{MD5}", "-s", "a"], ["-o", "MOD=/x", "-h", "{MD5}", "-s", "a"], ["-o"],
    ["-h", "{SHA}", "-T", "/tmp/pw-nl"], ["-h", "{SHA}", "-T", "/tmp/pw"], ["-h", "{MD5}", "-T", "/tmp/empty"],
    ["-h", "{SHA}", "-T", "/tmp/public"], ["-h", "{SHA}", "-T", "/tmp/nul"], ["-h", "{CLEARTEXT}", "-T", "/tmp/nul"],
    ["-h", "{CLEARTEXT}", "-T", "/tmp/brace"], ["-T", "/tmp/none"], ["-T", "/tmp/pw/x"], ["-T", "/tmp"],
    ["-T", "/tmp/pw", "-T", "/tmp/pw"], ["-s", "a", "-T", "/tmp/pw"], ["-T", "/tmp/pw", "-s", "a"],
    ["-T", "/tmp/pw", "-g"], ["-g", "-T", "/tmp/pw", "-h", "{MD5}"], ["-g", "-h", "{FOO}", "-x"],
    ["-h", "{\u017fHA}", "-s", "a"], ["-h", "{sMd5}", "-h", "{x}"], ["-h", "{SHA}", "-T", "tmp/pw"],
    ["x", "-h", "{SHA}", "-s", "a"], ["-s", "a", "-s", "b", "-x"], ["-hs", "x"],
]


@pytest.mark.parametrize("args", SAME, ids=lambda a: " ".join(a) or "none")
def test_deterministic_cases_byte_for_byte(pair, args):
    pair.check([["slappasswd", *args]], setup=_files)


def _verify(out: bytes, password: bytes) -> str:
    """The scheme of a salted hash line that verifies against ``password`` (asserts otherwise)."""
    m = re.fullmatch(rb"\{(SSHA|SMD5)\}([A-Za-z0-9+/]+=*)\n", out)
    assert m, out
    raw = base64.b64decode(m.group(2), validate=True)
    algo, size = ("sha1", 20) if m.group(1) == b"SSHA" else ("md5", 16)
    assert len(raw) == size + 4, raw
    digest, salt = raw[:size], raw[size:]
    assert hashlib.new(algo, password + salt).digest() == digest
    return m.group(1).decode()


@pytest.mark.parametrize("args,password,scheme", [
    (["-s", "secret"], b"secret", "SSHA"), (["-h", "{ssha}", "-s", "a b"], b"a b", "SSHA"),
    (["-h", "{SMD5}", "-s", "secret"], b"secret", "SMD5"), (["-T", "/tmp/pw-nl"], b"pw\n", "SSHA"),
    (["-u", "-v", "-o", "module-path=/usr/lib/ldap", "-s", "x"], b"x", "SSHA"),
])
def test_salted_hashes_verify(pair, args, password, scheme):
    pair.reset(_files)
    real = pair.run_real(["slappasswd", *args])
    salts = set()
    for _ in range(3):
        model = pair.run_model(["slappasswd", *args])
        assert (model[0], model[2]) == (real[0], real[2]) == (0, b"")
        assert _verify(real[1], password) == _verify(model[1], password) == scheme
        salts.add(model[1])
    assert len(salts) == 3  # a fresh salt each time


def test_generated_password(pair):
    pair.reset(_files)
    for argv in (["slappasswd", "-g"], ["slappasswd", "-g", "-n", "-h", "{MD5}"], ["slappasswd", "-g", "-s", "x"]):
        real, model = pair.run_real(argv), pair.run_model(argv)
        for status, out, err in (real, model):
            nl = b"" if "-n" in argv else b"\n"
            assert status == 0 and err == b"" and len(out) == 8 + len(nl) and out.endswith(nl)
            assert set(out[:8]) <= set(CRYPT64)


@pytest.mark.parametrize("args,why", [
    (["-h", "{CRYPT}", "-s", "a"], "crypt(3)"), (["-c", "$6$%.16s", "-s", "a"], "crypt(3)"),
    (["-o", "module-load=pw-sha2.so", "-s", "a"], "loading a module"), (["-h", "{SHA}"], "prompts"),
    (["-n"], "prompts"), (["-h", "{CLEARTEXT}", "-s", "{sha}abc"], "scheme name"),
    (["--help"], "'--'"),
])
def test_deferred(pair, args, why):
    pair.reset(_files)
    with pytest.raises(Defer, match=re.escape(why)):
        pair.run_model(["slappasswd", *args])
