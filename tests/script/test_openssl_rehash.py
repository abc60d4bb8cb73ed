"""``openssl rehash`` model against the real ``openssl rehash`` on identical directories.

Certificates are made by the real ``openssl req`` with subjects chosen to exercise the
canonical-name rules (case, white space, UTF-8, multi-valued RDNs, equal subjects that
collide on one hash); a CRL is made with ``cryptography``. Both sides start from the same
copy, with stale and misnumbered hash links; afterwards the directories must list the same
names with the same link targets, and the warnings must be the same.
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import subprocess

import pytest

from judges import tool
from nuwa.script.commands.caches.x509hash import cert_subject, name_hash, name_hash_old, pem_blocks
from nuwa.script.commands import default_models
from nuwa.script.context import Defer, Invocation

MODELS = default_models()

SUBJECTS = [
    "/CN=Plain Root",
    "/CN=plain root",  # same canonical name as above: hash collision -> .0 and .1
    "/C=DE/O=  Spaced    Out  Org /CN=UPPER case",
    "/C=FR/O=Société Générale/CN=Ünïcödé Root",
    "/CN=multi+OU=valued/O=RDN Corp",
    "/emailAddress=CA@Example.ORG/CN=mail",
    "/CN=Plain Root",  # same subject, different key: a third entry in the same bucket
]


def _hostdir():
    return pytest.importorskip("nuwa.fs.hostdir", reason="HostDirFS backend not available")


@pytest.fixture(scope="module")
def certdir(tmp_path_factory):
    openssl = tool("openssl")
    d = tmp_path_factory.mktemp("certs") / "src"
    d.mkdir()
    for i, subj in enumerate(SUBJECTS):
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(d / f"k{i}.key"), "-out", str(d / f"cert{i}.crt"), "-days", "30", "-utf8",
             "-multivalue-rdn", "-subj", subj],
            check=True, capture_output=True,
        )
        os.unlink(d / f"k{i}.key")
    shutil.copy(d / "cert0.crt", d / "dup.pem")  # same fingerprint: skipped as duplicate
    (d / "two.pem").write_bytes((d / "cert1.crt").read_bytes() + (d / "cert2.crt").read_bytes())
    (d / "notes.pem").write_text("no PEM here\n")
    (d / "README").write_text("ignored: no recognised extension\n")
    os.symlink("cert2.crt", d / "Linked Name.pem")
    _crl(d / "revoked.crl")
    # stale and misnumbered hash links
    os.symlink("gone.crt", d / "0badc0de.0")
    h0 = subprocess.run([openssl, "x509", "-noout", "-hash", "-in", str(d / "cert3.crt")],
                        capture_output=True, text=True, check=True).stdout.strip()
    os.symlink("cert3.crt", d / f"{h0}.5")
    os.symlink("cert4.crt", d / f"{h0}.0")  # wrong file under cert3's hash
    return d


def _crl(path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CRL  Issuer")]))
        .last_update(now)
        .next_update(now + datetime.timedelta(days=7))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))


def _listing(d):
    out = {}
    for n in os.listdir(d):
        p = os.path.join(d, n)
        out[n] = ("->", os.readlink(p)) if os.path.islink(p) else ("file", open(p, "rb").read())
    return out


@pytest.mark.judge
@pytest.mark.parametrize("flags", [[], ["-compat"], ["-old"], ["-n"], ["-v"]])
def test_rehash_matches_real_openssl(certdir, tmp_path, flags):
    openssl = tool("openssl")
    real = tmp_path / "real" / "certs"
    sim_root = tmp_path / "sim"
    shutil.copytree(certdir, real, symlinks=True)
    shutil.copytree(certdir, sim_root / "etc/ssl/certs", symlinks=True)
    r = subprocess.run([openssl, "rehash", *flags, str(real)], capture_output=True, text=True)

    fs = _hostdir().HostDirFS(str(sim_root), writable=True)
    inv = Invocation(argv=["openssl", "rehash", *flags, "."], fs=fs, cwd="/etc/ssl/certs", models=MODELS)
    status = MODELS["openssl"](inv)
    assert status == r.returncode
    assert _listing(sim_root / "etc/ssl/certs") == _listing(real)
    assert inv.stderr.decode() == r.stderr
    assert inv.stdout.decode() == r.stdout.replace(f"Doing {real}\n", "Doing .\n")


@pytest.mark.judge
def test_subject_hashes_match_openssl_x509(certdir):
    openssl = tool("openssl")
    files = sorted(glob.glob(str(certdir / "cert*.crt"))) + sorted(glob.glob("/usr/share/ca-certificates/*/*.crt"))[:60]
    for f in files:
        der = pem_blocks(open(f, "rb").read())[0][1]
        name = cert_subject(der)
        want = subprocess.run([openssl, "x509", "-noout", "-subject_hash", "-subject_hash_old", "-in", f],
                              capture_output=True, text=True, check=True).stdout.split()
        assert [f"{name_hash(name):08x}", f"{name_hash_old(name):08x}"] == want, f


def test_other_openssl_subcommands_are_deferred(tmp_path):
    fs = _hostdir().HostDirFS(str(tmp_path), writable=True)
    for argv in (["openssl", "genrsa", "2048"], ["openssl", "s_client", "-connect", "example.org:443"], ["openssl"]):
        with pytest.raises(Defer):
            MODELS["openssl"](Invocation(argv=argv, fs=fs, models=MODELS))
