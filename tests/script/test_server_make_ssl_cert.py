"""ssl-cert's make-ssl-cert judged against the real bash script in a chroot (see server_harness).

Keys are random on both sides, so the two trees are compared path by path except the bytes
of the key and the certificate, and those two are compared field by field: subject, issuer,
subjectAltName, the extensions and their order and criticality, the subject key identifier
(of each side's own key), key type, size and exponent, signature algorithm, version,
validity length, the serial's size, the PEM labels; modes, owners and hash links are in the
tree comparison. The real script runs in its own UTS namespace named as the image's
``/etc/hostname``, so ``hostname -f`` answers there what it answers in the booted image.
"""

from __future__ import annotations

import datetime
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from nuwa.fs.hostdir import HostDirFS
from nuwa.fs.overlay import Overlay
from nuwa.script.interp import dpkg_environment, run_script
from server_harness import ENV, MODELS, Pair

DIRS = ["etc/ssl", "etc/hosts", "etc/hostname"]
CERT = "etc/ssl/certs/ssl-cert-snakeoil.pem"
KEY = "etc/ssl/private/ssl-cert-snakeoil.key"
REAL_ENV = {**ENV, "DEBIAN_FRONTEND": "noninteractive"}


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return Pair(str(tmp_path_factory.mktemp("sslcert")), DIRS)


def _hosts(text: bytes, hostname: bytes = b"vm\n"):
    def setup(root: str) -> None:
        with open(os.path.join(root, "etc/hosts"), "wb") as f:
            f.write(text)
        with open(os.path.join(root, "etc/hostname"), "wb") as f:
            f.write(hostname)
    return setup


def run_real(pair: Pair, cmd: str, name: str = "vm"):
    p = subprocess.run(["unshare", "--uts", "sh", "-c", 'hostname "$0" && exec chroot "$1" /bin/sh -c "$2"', name,
                        pair.real, cmd], env=REAL_ENV, capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def cert_fields(root: str, fresh: bool = True) -> dict:
    with open(os.path.join(root, CERT), "rb") as f:
        pem = f.read()
    with open(os.path.join(root, KEY), "rb") as f:
        key_pem = f.read()
    cert = x509.load_pem_x509_certificate(pem)
    key = serialization.load_pem_private_key(key_pem, None)
    pub = cert.public_key()
    assert isinstance(key, rsa.RSAPrivateKey) and isinstance(pub, rsa.RSAPublicKey)
    assert key.public_key().public_numbers() == pub.public_numbers()  # the key file holds the cert's key
    skid = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert skid == x509.SubjectKeyIdentifier.from_public_key(pub)
    if fresh:  # made by this run, not the tree's own from its build
        age = datetime.datetime.now(datetime.timezone.utc) - cert.not_valid_before_utc
        assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=10)
    assert 0 < cert.serial_number < 1 << 159
    return {
        "pem": (pem.splitlines()[0], key_pem.splitlines()[0], pem.count(b"-----BEGIN")),
        "version": cert.version, "subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
        "subject_der": cert.subject.public_bytes(), "sig": cert.signature_algorithm_oid.dotted_string,
        "sig_hash": cert.signature_hash_algorithm.name,
        "validity": cert.not_valid_after_utc - cert.not_valid_before_utc,
        "extensions": [(e.oid.dotted_string, e.critical,
                        None if isinstance(e.value, x509.SubjectKeyIdentifier) else e.value)
                       for e in cert.extensions],
        "key": (pub.key_size, pub.public_numbers().e),
    }


def tree_without_key_bytes(pair: Pair, root: str) -> dict:
    facts = pair.facts(root)
    for rel in (CERT, KEY):
        if rel in facts:
            mode, uid, gid, _size, _hash, *rest = facts[rel]
            facts[rel] = (mode, uid, gid, *rest)
    return facts


HOSTS = b"127.0.0.1 localhost\n127.0.1.1 vm.example.org vm\n"
CASES = {
    "force": (_hosts(HOSTS), ["make-ssl-cert generate-default-snakeoil --force-overwrite"]),
    "force-short-name": (_hosts(b"127.0.0.1 localhost\n127.0.1.1 vm\n"),
                         ["make-ssl-cert -f generate-default-snakeoil"]),
    "kept": (_hosts(HOSTS), ["make-ssl-cert generate-default-snakeoil", "make-ssl-cert -n generate-default-snakeoil"]),
    "fresh": (_hosts(HOSTS), ["rm /etc/ssl/certs/ssl-cert-snakeoil.pem /etc/ssl/certs/62742064.0",
                              "make-ssl-cert generate-default-snakeoil"]),
    "key-missing": (_hosts(HOSTS), ["rm /etc/ssl/private/ssl-cert-snakeoil.key",
                                    "make-ssl-cert generate-default-snakeoil",
                                    "make-ssl-cert generate-default-snakeoil"]),
    "usage": (_hosts(HOSTS), ["make-ssl-cert", "make-ssl-cert --help", "make-ssl-cert --bogus",
                              "make-ssl-cert -f -n generate-default-snakeoil", "make-ssl-cert onlyone"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_make_ssl_cert_matches_real(pair, case):
    setup, cmds = CASES[case]
    pair.reset(setup)
    for cmd in cmds:
        real = run_real(pair, cmd)
        res = pair.run_model(cmd)
        assert not res.deferred_commands and not res.deferred_whole, (cmd, res.deferred_commands)
        assert (res.status, res.stdout, res.stderr) == real, cmd
    assert tree_without_key_bytes(pair, pair.model) == tree_without_key_bytes(pair, pair.real)
    kept = case in ("kept", "usage")
    if kept:  # both sides kept the tree's own pair: the same bytes as before
        for rel in (CERT, KEY):
            with open(os.path.join(pair.model, rel), "rb") as a, open(os.path.join(pair.pristine, rel), "rb") as b:
                assert a.read() == b.read()
    model, real = cert_fields(pair.model, not kept), cert_fields(pair.real, not kept)
    # openssl req reads the clock once for notBefore and again for notAfter: when a second
    # passes between the two, the real validity is one second longer than the days asked
    assert real.pop("validity") - model.pop("validity") in (datetime.timedelta(0), datetime.timedelta(seconds=1))
    assert model == real


def test_rewritten_certificate_is_new_and_differs_between_runs(pair):
    pair.reset(_hosts(HOSTS))
    with open(os.path.join(pair.model, KEY), "rb") as f:
        before = f.read()
    pair.run_model("make-ssl-cert -f generate-default-snakeoil")
    with open(os.path.join(pair.model, KEY), "rb") as f:
        first = f.read()
    pair.run_model("make-ssl-cert -f generate-default-snakeoil")
    with open(os.path.join(pair.model, KEY), "rb") as f:
        second = f.read()
    assert len({before, first, second}) == 3


@pytest.mark.parametrize("setup, cmd, reason", [
    (_hosts(b"127.0.0.1 localhost\n"), "make-ssl-cert -f generate-default-snakeoil", "DNS"),
    (_hosts(HOSTS), "make-ssl-cert /usr/share/ssl-cert/ssleay.cnf /tmp/x.pem", "debconf"),
    (_hosts(HOSTS), "make-ssl-cert -x 10 generate-default-snakeoil", "OPTIND"),
])
def test_make_ssl_cert_defers(pair, setup, cmd, reason):
    pair.reset(setup)
    before = pair.facts(pair.model)
    res = pair.run_model(cmd)
    assert res.deferred_commands and reason in res.deferred_commands[0].reason, res.deferred_commands
    assert pair.facts(pair.model) == before


def test_make_ssl_cert_defers_an_unknown_template(pair, tmp_path):
    pair.reset(_hosts(HOSTS))
    tpl = os.path.join(pair.model, "usr/share/ssl-cert/ssleay.cnf")
    with open(tpl, "rb") as f:
        original = f.read()
    try:
        with open(tpl, "wb") as f:
            f.write(original.replace(b"default_bits            = 2048", b"default_bits            = 4096"))
        before = pair.facts(pair.model)
        res = pair.run_model("make-ssl-cert -f generate-default-snakeoil")
        assert res.deferred_commands and "template" in res.deferred_commands[0].reason
        assert pair.facts(pair.model) == before
    finally:
        with open(tpl, "wb") as f:
            f.write(original)


def _no_snakeoil(root: str) -> None:
    _hosts(HOSTS)(root)
    for rel in (CERT, KEY, "etc/ssl/certs/62742064.0"):
        os.unlink(os.path.join(root, rel))


def test_ssl_cert_postinst_configure_matches_real(tmp_path):
    # ssl-cert's own postinst (confmodule, addgroup guard, make-ssl-cert, dpkg-statoverride)
    p = Pair(str(tmp_path), DIRS + ["var/lib/dpkg/statoverride", "etc/group"])
    p.reset(_no_snakeoil)
    script = "/var/lib/dpkg/info/ssl-cert.postinst"
    env = {**dpkg_environment("postinst", "ssl-cert", "all"), "DEBIAN_FRONTEND": "noninteractive"}
    real = subprocess.run(["unshare", "--uts", "sh", "-c", 'hostname vm && exec chroot "$0" "$1" configure ""',
                           p.real, script], env=env, capture_output=True, timeout=300)
    fs = Overlay(HostDirFS(p.model, writable=True))
    res = run_script(fs, script, ["configure", ""], env=env, name=script, models=MODELS, is_path=True)
    fs.commit()
    assert not res.deferred_whole and not res.deferred_commands, (res.reason, res.deferred_commands)
    assert (res.status, res.stdout, res.stderr) == (real.returncode, real.stdout, real.stderr)
    assert any(r.classification == "simulated" and r.argv[0] == "make-ssl-cert" for r in res.record.entries)
    assert tree_without_key_bytes(p, p.model) == tree_without_key_bytes(p, p.real)
    assert cert_fields(p.model) == cert_fields(p.real)
