"""The content-addressed cache: layout, verification on write and on read, named metadata,
left-overs, and two processes filling one cache at once (real processes, real flock)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

from helpers.paths import REPO
from nuwa.apt.cache import Cache, default_cache_root, sha256_file
from nuwa.errors import InvalidInputError, RepositoryError


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def objects(cache: Cache) -> list[str]:
    """Every file under sha256/ (what the cache would serve)."""
    out = []
    for d, _, files in os.walk(os.path.join(cache.root, "sha256")):
        out += [os.path.join(d, f) for f in files]
    return sorted(out)


def test_default_root_follows_xdg():
    assert default_cache_root({"XDG_CACHE_HOME": "/c", "HOME": "/h"}) == "/c/nuwa"
    assert default_cache_root({"HOME": "/h"}) == "/h/.cache/nuwa"
    # the XDG base-directory specification: a relative value is invalid and ignored
    assert default_cache_root({"XDG_CACHE_HOME": "rel", "HOME": "/h"}) == "/h/.cache/nuwa"
    assert default_cache_root({"XDG_CACHE_HOME": "", "HOME": "/h"}) == "/h/.cache/nuwa"


def test_default_root_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    c = Cache()
    assert c.root == str(tmp_path / "xdg" / "nuwa")
    assert os.path.isdir(os.path.join(c.root, "sha256"))


def test_put_bytes_then_read(tmp_path):
    c = Cache(str(tmp_path))
    data = b"Package: a\nVersion: 1\n"
    h = sha(data)
    p = c.put_bytes(data, h)
    assert p == os.path.join(str(tmp_path), "sha256", h[:2], h)
    assert c.has(h) and c.read(h) == data and c.read(h, len(data)) == data
    assert c.verified_path(h, len(data)) == p
    assert oct(os.stat(p).st_mode & 0o777) == "0o644"
    assert os.listdir(os.path.join(c.root, "tmp")) == []
    # storing it again is a no-op, not an error
    assert c.put_bytes(data) == p and objects(c) == [p]


def test_put_bytes_refuses_a_wrong_digest(tmp_path):
    c = Cache(str(tmp_path))
    with pytest.raises(RepositoryError, match=r"^http://x/y: SHA256 mismatch \(got [0-9a-f]{64}, expected 0{64}\)$"):
        c.put_bytes(b"data", "0" * 64, where="http://x/y")
    assert objects(c) == [] and os.listdir(os.path.join(c.root, "tmp")) == []


def test_put_file_verifies_and_consumes(tmp_path):
    c = Cache(str(tmp_path))
    good = c.tmp_file()
    with open(good, "wb") as f:
        f.write(b"x" * 1000)
    h = sha(b"x" * 1000)
    p = c.put_file(good, h, 1000)
    assert not os.path.exists(good) and sha256_file(p) == h

    bad = c.tmp_file()
    with open(bad, "wb") as f:
        f.write(b"y" * 1000)
    with pytest.raises(RepositoryError, match="SHA256 mismatch"):
        c.put_file(bad, "1" * 64, where="http://x/a.deb")
    assert not os.path.exists(bad) and not c.has("1" * 64)

    short = c.tmp_file()
    with open(short, "wb") as f:
        f.write(b"z" * 10)
    with pytest.raises(RepositoryError, match=r"size mismatch \(got 10 bytes, expected 11\)"):
        c.put_file(short, sha(b"z" * 10), 11)
    assert not os.path.exists(short) and not c.has(sha(b"z" * 10))


def test_bad_digest_text_is_refused(tmp_path):
    c = Cache(str(tmp_path))
    for bad in ("abc", "g" * 64, "../" + "0" * 61):
        with pytest.raises(InvalidInputError, match="not a SHA-256 digest"):
            c.path(bad)


@pytest.mark.parametrize("damage", ["flip", "truncate", "append", "replace-keep-times"])
def test_a_damaged_object_is_never_served(tmp_path, damage):
    c = Cache(str(tmp_path))
    data = os.urandom(5000)
    h = sha(data)
    p = c.put_bytes(data, h)
    assert c.verified_path(h, 5000) == p  # checked once: a second check must not trust it
    st = os.stat(p)
    with open(p, "r+b") as f:
        if damage == "flip":
            f.seek(1234)
            f.write(bytes([data[1234] ^ 1]))
        elif damage == "truncate":
            f.truncate(4000)
        elif damage == "append":
            f.seek(0, 2)
            f.write(b"!")
        else:  # bit rot: same size, same times; only the content says so
            f.write(b"\0" * 16)
    if damage == "replace-keep-times":
        os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert c.verified_path(h) is None
    assert not os.path.exists(p)  # removed, so the next get fetches it again
    c.put_bytes(data, h)
    with open(p, "r+b") as f:
        f.write(b"\xff")
    assert c.read(h) is None and not os.path.exists(p)


def test_named_metadata(tmp_path):
    c = Cache(str(tmp_path))
    key = "http://127.0.0.1:8080/debian/dists/bookworm/InRelease"
    assert c.get_named(key) is None
    c.put_named(key, b"one")
    c.put_named(key, b"two")  # replaced atomically
    assert c.get_named(key) == b"two"
    assert Cache(str(tmp_path)).get_named(key) == b"two"  # persists across runs
    long_key = "k/" * 300
    c.put_named(long_key, b"long")
    assert c.get_named(long_key) == b"long"
    for k in (".", "..", ""):
        c.put_named(k, k.encode() + b"!")
        assert c.get_named(k) == k.encode() + b"!"
    assert os.listdir(os.path.join(c.root, "tmp")) == []


def test_named_metadata_damaged(tmp_path):
    c = Cache(str(tmp_path))
    c.put_named("k", b"verified text")
    obj = c.path(sha(b"verified text"))
    with open(obj, "wb") as f:
        f.write(b"verified texT")
    assert c.get_named("k") is None  # the object no longer matches the reference
    c.put_named("k", b"verified text")
    ref = os.path.join(c.root, "named", "k")
    with open(ref, "w") as f:
        f.write("garbage")
    assert c.get_named("k") is None


def test_stale_tmp_files_are_removed(tmp_path):
    c = Cache(str(tmp_path))
    old, new = c.tmp_file(), c.tmp_file()
    os.utime(old, (time.time() - 3 * 86400,) * 2)
    Cache(str(tmp_path))
    assert not os.path.exists(old) and os.path.exists(new)


def test_unusable_root(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(InvalidInputError, match=r"^cache directory .*/file/nuwa: Not a directory$"):
        Cache(str(blocker / "nuwa"))


def _run(code: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                            env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_lock_excludes_another_process(tmp_path):
    c = Cache(str(tmp_path))
    h = "a" * 64
    holder = _run("""
        import sys, time
        from nuwa.apt.cache import Cache
        c = Cache(sys.argv[1])
        with c.lock(sys.argv[2]):
            print("held", flush=True)
            time.sleep(0.8)
            print(time.time(), flush=True)
        """, tmp_path, h)
    assert holder.stdout.readline() == "held\n"
    with c.lock(h):
        got = time.time()
    released = float(holder.stdout.readline())
    holder.wait(10)
    assert got >= released  # this process got the lock only after the other let it go


def test_two_processes_filling_one_cache(tmp_path):
    # each process stores the same 40 objects (and its own 40) in a random order; every
    # object must end whole and verified, and nothing left in tmp/
    code = """
        import hashlib, random, sys
        from nuwa.apt.cache import Cache
        c = Cache(sys.argv[1])
        me = sys.argv[2]
        blobs = [bytes([i]) * (1000 + 37 * i) for i in range(40)] + [(me + str(i)).encode() * 500 for i in range(40)]
        random.shuffle(blobs)
        for b in blobs:
            c.put_bytes(b, hashlib.sha256(b).hexdigest())
            c.put_named("shared", b)
            assert c.read(hashlib.sha256(b).hexdigest()) == b
        print("ok")
        """
    procs = [_run(code, tmp_path, name) for name in ("p1", "p2", "p3")]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out == "ok\n"
    c = Cache(str(tmp_path))
    objs = objects(c)
    assert len(objs) == 40 + 3 * 40
    for p in objs:
        assert sha256_file(p) == os.path.basename(p)
    assert os.listdir(os.path.join(c.root, "tmp")) == []
    assert c.get_named("shared") is not None
