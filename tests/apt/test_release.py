"""Release / InRelease verification (nuwa.apt.release) on real repositories signed at test time,
and on the machine's own Debian lists with Debian's archive keys.

Every refusal is one line naming the file and the reason; the signature cases are those of
issue 11 (good, wrong key, tampered InRelease, expired Valid-Until, SHA1-only, missing key,
Signed-By naming another key) plus the places where apt's policy is stricter than Sequoia's
(SHA-224, RSA-1024, DSA) and the clearsigned layout rules apt enforces itself.
"""

from __future__ import annotations

import datetime as dt
import glob
import os
import subprocess

import pysequoia
import pytest

from helpers.aptrepo import build_repo, make_key, rfc1123, stop_gpg_agent
from helpers.debtools import build_deb
from judges import tool
from nuwa.apt.release import (ReleaseFile, check_dist, dist_url, parse_date, pool_url,
                              split_clearsigned, time_to_str, verify_release)
from nuwa.errors import InvalidInputError, RepositoryError

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("debs"))
    return [build_deb(d, "hello", "1.0-1", {"/usr/share/hello/a": b"a\n"}),
            build_deb(d, "world", "2.0-1", {"/usr/share/world/b": b"b\n"}, arch="amd64",
                      extra="Depends: hello (>= 1.0)\n")]


def _repo(tmp_path, debs, name="repo", **kw):
    return build_repo(str(tmp_path / name), debs, **kw)


def _verify(repo, certs=None, *, use_inrelease=True, **kw):
    kw.setdefault("suite", "stable")
    return verify_release(inrelease=repo.read("InRelease") if use_inrelease else None,
                          release=repo.read("Release"), release_gpg=repo.read("Release.gpg"),
                          certs=[repo.cert] if certs is None else certs,
                          where=dist_url(repo.uri, repo.suite), **kw)


def _refused(repo, match, **kw) -> str:
    with pytest.raises(RepositoryError) as exc:
        _verify(repo, **kw)
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert match in msg, msg
    assert isinstance(exc.value, InvalidInputError) and exc.value.exit_code == 2
    return msg


def test_good_signature_inrelease(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    rel = _verify(repo)
    assert rel.signer == repo.cert.fingerprint.upper()
    assert rel.fields["Suite"] == "stable" and rel.fields["Codename"] == "nuwa-test"
    xz = rel.files["main/binary-amd64/Packages.xz"]
    assert xz.size == len(repo.read("main/binary-amd64/Packages.xz"))
    assert rel.acquire_by_hash and rel.entry(f"main/binary-amd64/by-hash/SHA256/{xz.sha256}") == xz
    assert rel.components == ["main"] and rel.architectures == ["amd64"]
    assert rel.valid_until - rel.date == dt.timedelta(days=7)

    class Src:
        uri, suite = repo.uri, "stable"
    info = rel.info(Src, "main")
    assert (info.origin, info.label, info.archive, info.codename, info.component, info.trusted) == \
        ("Nuwa Test", "Nuwa Test", "stable", "nuwa-test", "main", True)


def test_helper_key_and_sources_line(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    for armor, name in ((True, "k.asc"), (False, "k.gpg")):
        path = repo.write_key(str(tmp_path / name), armor=armor)
        cert = pysequoia.Cert.from_file(path)
        assert _verify(repo, certs=[cert]).signer == cert.fingerprint.upper()
    assert repo.sources_line("/k.gpg") == f"deb [signed-by=/k.gpg] {repo.uri} stable main"
    flat = _repo(tmp_path, debs, name="flat", flat=True)
    assert flat.sources_line(uri="http://127.0.0.1:8000") == "deb http://127.0.0.1:8000 ./"


def test_good_signature_release_gpg(tmp_path, debs):
    repo = _repo(tmp_path, debs, inrelease=False)
    assert repo.read("InRelease") is None
    rel = _verify(repo)
    assert rel.signer == repo.cert.fingerprint.upper()


def test_codename_matches_too(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    assert _verify(repo, suite="nuwa-test").fields["Codename"] == "nuwa-test"


def test_wrong_key(tmp_path, debs):
    other = make_key("Someone Else <else@example.invalid>")
    repo = _repo(tmp_path, debs, sign_with=other)
    msg = _refused(repo, "missing key")
    assert "/dists/stable/InRelease:" in msg and repo.cert.fingerprint.upper() in msg


def test_signed_by_another_key(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    other = make_key("Another <another@example.invalid>").extract_certificate()
    msg = _refused(repo, "not among the 1 key(s) this source trusts", certs=[other])
    assert other.fingerprint.upper() in msg


def test_missing_key(tmp_path, debs):
    _refused(_repo(tmp_path, debs), "the source has no key to verify it with", certs=[])


def test_tampered_inrelease(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    repo.tamper("InRelease", find=b"Packages.xz")
    msg = _refused(repo, "BAD signature from key " + repo.cert.fingerprint.upper())
    assert msg.split(":")[0].endswith("InRelease") or "/InRelease:" in msg


def test_tampered_release_detached(tmp_path, debs):
    repo = _repo(tmp_path, debs, inrelease=False)
    repo.tamper("Release", find=b"Packages.gz")
    assert "/Release.gpg:" in _refused(repo, "BAD signature")


def test_expired_valid_until(tmp_path, debs):
    past = dt.datetime.now(UTC) - dt.timedelta(days=30)
    repo = _repo(tmp_path, debs, date=past, valid_until=past + dt.timedelta(days=7))
    msg = _refused(repo, "Release file is expired (invalid since 2")
    assert "/InRelease:" in msg
    assert _verify(repo, allow_expired=True).signer  # --allow-expired
    assert _verify(repo, check_valid_until=False).signer  # check-valid-until=no


def test_date_in_future(tmp_path, debs):
    future = dt.datetime.now(UTC) + dt.timedelta(hours=2)
    repo = _repo(tmp_path, debs, date=future)
    _refused(repo, "Release file is not valid yet (invalid for another 1h 59min")
    # within apt's 10 s Acquire::Max-FutureTime it is accepted
    soon = _repo(tmp_path, debs, name="soon", date=dt.datetime.now(UTC) + dt.timedelta(seconds=5))
    assert _verify(soon).signer


@pytest.mark.parametrize("detached", [False, True])
def test_sha1_signature_refused(tmp_path, debs, detached):
    tool("gpg")
    repo = _repo(tmp_path, debs, digest="SHA1", inrelease=not detached)
    msg = _refused(repo, "weak digest algorithm SHA1")
    assert msg.split(": ")[0].endswith("Release.gpg" if detached else "InRelease")


def test_sha224_refused_by_apt_policy_though_sequoia_accepts(tmp_path, debs):
    """Sequoia's standard policy still accepts SHA-224; apt's (default-sequoia.config) refuses
    it from 2026-02-01 — the decision is made explicitly by Nuwa."""
    tool("gpg")
    repo = _repo(tmp_path, debs, digest="SHA224")
    data = repo.read("InRelease")
    assert pysequoia.verify(bytes=data, store=lambda ids: [repo.cert]).valid_sigs
    _refused(repo, "weak digest algorithm SHA224", now=dt.datetime.now(UTC))
    # before apt's cut-off date the same signature was acceptable
    before = dt.datetime(2026, 1, 15, tzinfo=UTC)
    repo2 = _repo(tmp_path, debs, name="r2", digest="SHA224", date=before - dt.timedelta(days=1),
                  valid_until=None)
    assert _verify(repo2, now=before).signer


def _gpg(home: str, *args: str, fake: dt.datetime | None = None) -> bytes:
    os.makedirs(home, mode=0o700, exist_ok=True)
    pre = ["--faked-system-time", fake.strftime("%Y%m%dT%H%M%S!")] if fake else []
    try:
        return subprocess.run([tool("gpg"), "--batch", "--passphrase", "", *pre, *args],
                              env=dict(os.environ, GNUPGHOME=home), check=True,
                              capture_output=True).stdout
    finally:
        stop_gpg_agent(home)


def _gpg_key(home: str, algo: str, fake: dt.datetime | None = None) -> pysequoia.Tsk:
    _gpg(home, "--quick-gen-key", f"Test {algo} <key@example.invalid>", algo, "sign", "never",
         fake=fake)
    return pysequoia.Tsk.from_bytes(_gpg(home, "--export-secret-keys", "--armor"))


@pytest.mark.parametrize("algo,reason", [("rsa1024", "weak key: RSA 1024 bits"),
                                         ("dsa2048", "weak key: DSA 2048 bits")])
def test_weak_keys_refused(tmp_path, debs, algo, reason):
    key = _gpg_key(str(tmp_path / "gnupg"), algo)
    repo = _repo(tmp_path, debs, key=key, digest="SHA256")
    _refused(repo, reason)


def test_expired_key(tmp_path, debs):
    """A signature made after the signing key expired is refused; one made before is not
    (Sequoia judges key validity at the signature's time, as apt's sqv does)."""
    home = str(tmp_path / "gnupg")
    born = dt.datetime.now(UTC) - dt.timedelta(days=10)
    key = _gpg_key(home, "ed25519", fake=born)
    repo = _repo(tmp_path, debs, key=key, digest="SHA512")  # signed now, key without expiry
    assert _verify(repo).signer == key.extract_certificate().fingerprint.upper()
    # then the key's expiry is set, by a self-signature dated before the Release signature,
    # to one day after its creation: at the time of the signature the key had expired
    fpr = key.extract_certificate().fingerprint.upper()
    _gpg(home, "--quick-set-expire", fpr, "1d", fake=born + dt.timedelta(hours=1))
    expired = pysequoia.Cert.from_bytes(_gpg(home, "--export", "--armor"))
    msg = _refused(repo, f"key {fpr} expired on", certs=[expired])
    assert "/InRelease:" in msg


def test_no_sha256_section(tmp_path, debs):
    repo = _repo(tmp_path, debs, sha256=False)
    _refused(repo, "No Hash entry in Release file which is considered strong enough")


def test_conflicting_distribution(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    _refused(repo, "Conflicting distribution (expected bookworm but got nuwa-test)",
             suite="bookworm")
    warnings = []
    assert _verify(repo, suite="bookworm", warn=warnings.append).signer
    assert len(warnings) == 1 and "Conflicting distribution" in warnings[0]


def test_unsigned_and_trusted(tmp_path, debs):
    repo = _repo(tmp_path, debs, inrelease=False, release_gpg=False)
    assert "/Release:" in _refused(repo, "the repository is not signed")
    rel = _verify(repo, trusted=True, certs=[])
    assert rel.signer is None and rel.files

    class Src:
        uri, suite = repo.uri, "stable"
    assert rel.info(Src, "main").trusted is False
    # an InRelease signed by a stranger is accepted only because the source says trusted=yes
    signed = _repo(tmp_path, debs, name="t2", sign_with=make_key())
    assert _verify(signed, trusted=True, certs=[]).signer is None


def test_no_release_file(tmp_path, debs):
    repo = _repo(tmp_path, debs, inrelease=False, release_gpg=False)
    os.remove(repo.path("Release"))
    _refused(repo, "does not have a Release file")


@pytest.mark.parametrize("mutate,reason", [
    (lambda d: b"junk\n" + d, "does not start with a signed message block"),
    (lambda d: d + b"Origin: Evil\n", "contains unsigned lines"),
    (lambda d: d.replace(b"\nOrigin:", b"\n-Origin:", 1), "unexpected line starting with a dash (msg)"),
    (lambda d: d.replace(b"-----END PGP SIGNATURE-----\n", b""), "was not closed"),
    (lambda d: d.split(b"-----BEGIN PGP SIGNED MESSAGE-----\n", 1)[1], "not a clearsigned file"),
])
def test_clearsigned_layout(tmp_path, debs, mutate, reason):
    repo = _repo(tmp_path, debs)
    changed = mutate(repo.read("InRelease"))
    with open(repo.path("InRelease"), "wb") as f:
        f.write(changed)
    _refused(repo, reason)


def test_text_comes_from_the_verified_part(tmp_path, debs):
    """A second, unsigned paragraph smuggled after the signature is refused; the verified text
    equals the Release file byte for byte."""
    repo = _repo(tmp_path, debs)
    text, sig = split_clearsigned(repo.read("InRelease"), "x")
    assert text == repo.read("Release") and sig.startswith(b"-----BEGIN PGP SIGNATURE-----")


def test_helpers():
    assert time_to_str(7 * 86400 + 3 * 3600 + 42 * 60 + 1) == "7d 3h 42min 1s"
    assert time_to_str(61) == "1min 1s" and time_to_str(5) == "5s"
    when = dt.datetime(2026, 12, 5, 19, 48, 3, tzinfo=UTC)
    assert parse_date(rfc1123(when)) == when and parse_date("garbage") is None
    assert dist_url("http://h/debian/", "bookworm") == "http://h/debian/dists/bookworm"
    assert dist_url("file:/srv/r", "./") == "file:/srv/r" and dist_url("file:/r", "sub/") == "file:/r/sub"
    assert pool_url("http://h/debian", "bookworm", "pool/main/b/bash/bash.deb") == \
        "http://h/debian/pool/main/b/bash/bash.deb"
    assert pool_url("file:/r", "sub/", "./a.deb") == "file:/r/sub/a.deb"
    rel = ReleaseFile(fields={"Suite": "stable-security", "Codename": "bookworm-security"},
                      files={}, signer=None)
    assert check_dist(rel, "bookworm-security") and check_dist(rel, "stable-security")
    assert check_dist(rel, "./") and not check_dist(rel, "bookworm")


# --- real data: the machine's own apt lists with Debian's archive keys -------------------

def _debian_keys() -> tuple[list, str]:
    """Debian's archive keys from the shipped default image when it holds them, else the
    host's debian-archive-keyring (the second source the brief allows)."""
    import nuwa
    image = os.path.join(os.path.dirname(__file__), "..", "..", "testimages", "default.qcow2")
    if os.path.exists(image):
        with nuwa.open(image) as im:
            root = im.root()
            for p in ("/usr/share/keyrings/debian-archive-keyring.gpg",
                      "/etc/apt/trusted.gpg.d/debian-archive-bookworm-stable.gpg"):
                try:
                    return pysequoia.Cert.split_bytes(root.read_bytes(p)), f"image:{p}"
                except OSError:
                    continue
    p = "/usr/share/keyrings/debian-archive-keyring.gpg"
    if os.path.exists(p):
        return pysequoia.Cert.split_file(p), p
    return [], ""


def _real_lists() -> list[str]:
    return sorted(glob.glob("/var/lib/apt/lists/*_dists_*_InRelease"))


def test_real_inrelease_verifies_and_one_byte_breaks_it(tmp_path, debs):
    lists = _real_lists()
    certs, keysrc = _debian_keys()
    if not lists or not certs:
        if not os.environ.get("CI"):
            pytest.skip("this machine has no /var/lib/apt/lists/*InRelease or no Debian archive "
                        "keyring (run apt-get update / install debian-archive-keyring)")
        # under CI with truly nothing: the same checks on a generated RSA-4096-like repository
        key = make_key(rsa=True)
        repo = build_repo(str(tmp_path / "gen"), debs, key=key)
        lists, certs = [repo.path("InRelease")], [repo.cert]
    for path in lists:
        with open(path, "rb") as f:
            data = f.read()
        suite = os.path.basename(path).split("_dists_", 1)[1].rsplit("_InRelease", 1)[0] \
            if "_dists_" in path else "stable"
        suite = suite.replace("_", "/")
        # the lists may be days old: judge dates as of their own Date field
        text_date = next(ln.split(b":", 1)[1].decode() for ln in data.splitlines()
                         if ln.startswith(b"Date:"))
        now = parse_date(text_date) + dt.timedelta(hours=1)
        rel = verify_release(inrelease=data, release=None, release_gpg=None, certs=certs,
                             where=path, suite=suite, now=now)
        assert rel.signer in {c.fingerprint.upper() for c in certs}, keysrc
        assert any(p.endswith("Packages.xz") for p in rel.files)
        # one byte changed inside the signed text (a hash digit) must not verify
        i = data.index(b"Packages.xz") - 80
        while not data[i:i + 1].isalnum():
            i += 1
        bad = data[:i] + (b"0" if data[i:i + 1] != b"0" else b"1") + data[i + 1:]
        with pytest.raises(RepositoryError, match="BAD signature"):
            verify_release(inrelease=bad, release=None, release_gpg=None, certs=certs,
                           where=path, suite=suite, now=now)


def test_rsa2048_year_ahead_warning_then_refusal(tmp_path, debs):
    """apt's sqv method checks with the policy one year ahead first and warns when only the
    present policy accepts; RSA-2048 is refused from 2030-02-01 (default-sequoia.config)."""
    key = pysequoia.Tsk.generate("RSA2k <rsa@example.invalid>",
                                 cipher_suite=pysequoia.CipherSuite.RSA2k)
    repo = _repo(tmp_path, debs, key=key)
    warnings = []
    assert _verify(repo, warn=warnings.append).signer and warnings == []
    late = dt.datetime(2029, 6, 1, tzinfo=UTC)
    assert _verify(repo, now=late, check_valid_until=False, warn=warnings.append).signer
    assert len(warnings) == 1 and "policy will reject signature within a year" in warnings[0]
    _refused(repo, "weak key: RSA 2048 bits", now=dt.datetime(2030, 3, 1, tzinfo=UTC),
             check_valid_until=False)


def test_revoked_key(tmp_path, debs):
    repo = _repo(tmp_path, debs)
    revocation = repo.cert.revoke(repo.key.certifier())
    revoked = pysequoia.Cert.from_bytes(bytes(repo.cert) + bytes(revocation))
    _refused(repo, f"key {repo.cert.fingerprint.upper()} is revoked", certs=[revoked])


def test_one_good_signature_of_several_is_enough(tmp_path, debs):
    """Debian signs with two or three keys; the source needs to trust one of them. The
    reported signer is the trusted one."""
    repo = _repo(tmp_path, debs)
    stranger = make_key()
    text = repo.read("Release")
    first = pysequoia.sign(stranger.signer(), text, mode=pysequoia.SignatureMode.DETACHED)
    second = pysequoia.sign(repo.key.signer(), text, mode=pysequoia.SignatureMode.DETACHED)
    both = pysequoia.armor(bytes(pysequoia.Sig.from_bytes(first)) +
                           bytes(pysequoia.Sig.from_bytes(second)),
                           pysequoia.ArmorKind.Signature).encode()
    with open(repo.path("Release.gpg"), "wb") as f:
        f.write(both)
    rel = _verify(repo, use_inrelease=False)
    assert rel.signer == repo.cert.fingerprint.upper()
    assert _verify(repo, use_inrelease=False, certs=[stranger.extract_certificate()]).signer == \
        stranger.extract_certificate().fingerprint.upper()


@pytest.mark.parametrize("name", ["InRelease", "Release.gpg"])
def test_unreadable_signature(tmp_path, debs, name):
    repo = _repo(tmp_path, debs, inrelease=name == "InRelease")
    data = repo.read(name)
    start = data.index(b"-----BEGIN PGP SIGNATURE-----")
    broken = data[:start] + b"-----BEGIN PGP SIGNATURE-----\n\nbm90IGEgc2lnbmF0dXJl\n" \
        b"-----END PGP SIGNATURE-----\n"
    with open(repo.path(name), "wb") as f:
        f.write(broken)
    msg = _refused(repo, name, use_inrelease=name == "InRelease")
    assert "signature" in msg
