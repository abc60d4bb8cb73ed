"""Downloads against a real local server (tests/helpers/httpserve.py) and ``file:`` URLs:
every fault a mirror or the network can show gives one line naming the URL and the reason, and
the cache never holds a file that did not match its size and SHA-256."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import time

import pytest

from helpers.httpserve import Server, refused_url
from helpers.paths import REPO
from nuwa.apt.cache import Cache, sha256_file
from nuwa.apt.fetch import Fetcher, ProxyConfig, display_url
from nuwa.errors import RepositoryError

DEB = os.urandom(300_000)
DEB_SHA = hashlib.sha256(DEB).hexdigest()
META = b"Origin: Test\nSuite: test\n" * 40
META_SHA = hashlib.sha256(META).hexdigest()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "pool").mkdir(parents=True)
    (root / "dists").mkdir()
    (root / "pool" / "a.deb").write_bytes(DEB)
    (root / "dists" / "Release").write_bytes(META)
    for i in range(5):
        (root / "pool" / f"f{i}.deb").write_bytes(bytes([i]) * (20_000 + i))
    return root


@pytest.fixture
def srv(repo):
    with Server(str(repo)) as s:
        yield s


@pytest.fixture
def cache(tmp_path):
    return Cache(str(tmp_path / "cache"))


@pytest.fixture
def fetcher(cache):
    with Fetcher(cache, timeout=2.0, retries=2, backoff=0.01) as f:
        yield f


def objects(cache: Cache) -> list[str]:
    out = []
    for d, _, files in os.walk(os.path.join(cache.root, "sha256")):
        out += [os.path.join(d, f) for f in files]
    return out


def partials(cache: Cache) -> list[str]:
    return os.listdir(os.path.join(cache.root, "partial"))


def error(fn, *args, **kw) -> str:
    with pytest.raises(RepositoryError) as ei:
        fn(*args, **kw)
    msg = str(ei.value)
    assert "\n" not in msg and ei.value.exit_code == 2
    return msg


# -- plain downloads -------------------------------------------------------------------------


def test_get_and_cache(srv, fetcher, cache):
    url = srv.url_for("dists/Release")
    assert fetcher.get(url) == META
    assert objects(cache) == []  # without a digest nothing is cached
    assert fetcher.get(url, sha256=META_SHA, size=len(META)) == META
    assert cache.read(META_SHA) == META
    n = srv.count("/dists/Release")
    assert fetcher.get(url, sha256=META_SHA, size=len(META)) == META
    assert srv.count("/dists/Release") == n  # served from the cache


def test_get_file_and_cache(srv, fetcher, cache):
    url = srv.url_for("pool/a.deb")
    p = fetcher.get_file(url, sha256=DEB_SHA, size=len(DEB))
    assert p == cache.path(DEB_SHA) and sha256_file(p) == DEB_SHA
    assert fetcher.get_file(url, sha256=DEB_SHA, size=len(DEB)) == p
    assert srv.count("/pool/a.deb") == 1 and partials(cache) == []


def test_connections_are_kept_alive(srv, fetcher):
    for i in range(5):
        fetcher.get(srv.url_for(f"pool/f{i}.deb"))
    assert len({r.client for r in srv.requests}) == 1  # one connection for five files


def test_file_urls(repo, fetcher, cache):
    for url in (f"file:{repo}/dists/Release", f"file://{repo}/dists/Release"):
        assert fetcher.get(url) == META
    p = fetcher.get_file(f"file:{repo}/pool/a.deb", sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA
    assert fetcher.exists(f"file:{repo}/dists/Release") and not fetcher.exists(f"file:{repo}/dists/InRelease")
    assert fetcher.get(f"file:{repo}/dists/InRelease", missing_ok=True) is None
    msg = error(fetcher.get, f"file:{repo}/dists/InRelease")
    assert msg == f"file:{repo}/dists/InRelease: No such file"
    assert "larger than expected" in error(fetcher.get, f"file:{repo}/dists/Release", size=10)


def test_metadata_asks_proxies_to_revalidate(srv, fetcher):
    fetcher.get(srv.url_for("dists/Release"))
    assert srv.requests[-1].headers.get("cache-control") == "max-age=0"
    fetcher.get(srv.url_for("dists/Release"), sha256=META_SHA)  # named by its digest: immutable
    assert "cache-control" not in srv.requests[-1].headers
    fetcher.get_file(srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))
    assert "cache-control" not in srv.requests[-1].headers
    assert srv.requests[-1].headers["accept-encoding"] == "identity"  # the bytes hashed are the bytes sent


def test_get_files_first_error(srv, repo, fetcher, cache):
    data = (repo / "pool" / "f1.deb").read_bytes()
    items = [(srv.url_for("pool/missing.deb"), DEB_SHA, len(DEB)),
             (srv.url_for("pool/f1.deb"), hashlib.sha256(data).hexdigest(), len(data))]
    assert error(fetcher.get_files, items, workers=2).endswith("pool/missing.deb: 404 Not Found")


def test_get_files_in_parallel(srv, repo, fetcher):
    items = []
    for i in range(5):
        data = (repo / "pool" / f"f{i}.deb").read_bytes()
        items.append((srv.url_for(f"pool/f{i}.deb"), hashlib.sha256(data).hexdigest(), len(data)))
    paths = fetcher.get_files(items, workers=3)
    assert [os.path.basename(p) for p in paths] == [h for _, h, _ in items]
    assert all(sha256_file(p) == h for p, (_, h, _) in zip(paths, items))


# -- answers that are errors -----------------------------------------------------------------


def test_404_is_final(srv, fetcher):
    url = srv.url_for("dists/InRelease")
    assert error(fetcher.get, url) == f"{url}: 404 Not Found"
    assert srv.count("/dists/InRelease") == 1  # not retried
    assert fetcher.get(url, missing_ok=True) is None
    assert fetcher.exists(url) is False and fetcher.exists(srv.url_for("dists/Release")) is True
    srv.fail("dists/Release", 410)
    assert fetcher.exists(srv.url_for("dists/Release")) is False


def test_exists_without_head(srv, fetcher):
    srv.fail("dists/Release", 405, method="HEAD")
    assert fetcher.exists(srv.url_for("dists/Release")) is True
    assert srv.requests[-1].method == "GET" and srv.requests[-1].range == "bytes=0-0"
    srv.fail("dists/InRelease", 501, method="HEAD")
    assert fetcher.exists(srv.url_for("dists/InRelease")) is False


def test_500_is_retried(srv, fetcher):
    url = srv.url_for("dists/Release")
    srv.fail("dists/Release", 500, times=2)
    assert fetcher.get(url) == META
    assert srv.count("/dists/Release") == 3
    srv.fail("dists/Release", 503)
    assert error(fetcher.get, url) == f"{url}: 503 Service Unavailable (3 attempts)"
    srv.fail("pool/a.deb", 403)
    assert error(fetcher.exists, srv.url_for("pool/a.deb")).endswith(": 403 Forbidden")


def test_connection_refused(fetcher):
    url = refused_url("dists/InRelease")
    assert error(fetcher.get, url) == f"{url}: connection refused (3 attempts)"


def test_retries_back_off(cache):
    url = refused_url()
    f = Fetcher(cache, retries=3, backoff=0.1)
    t = time.monotonic()
    error(f.get, url)
    assert time.monotonic() - t >= 0.1 + 0.2 + 0.4  # three pauses, doubling


def test_slow_server_times_out(srv, cache):
    f = Fetcher(cache, timeout=0.3, retries=1, backoff=0.01)
    url = srv.url_for("dists/Release")
    srv.slow("dists/Release", 5.0)
    t = time.monotonic()
    assert error(f.get, url) == f"{url}: timed out after 0.3 s (2 attempts)"
    assert time.monotonic() - t < 2.5
    srv.clear()
    srv.slow("pool/a.deb", 5.0, body=True)  # stalls after the headers
    assert "timed out after 0.3 s" in error(f.get_file, srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))


def test_slow_but_within_timeout(srv, fetcher):
    srv.slow("dists/Release", 0.3, times=1)
    assert fetcher.get(srv.url_for("dists/Release")) == META


def test_redirects(srv, fetcher):
    srv.redirect("old/Release", "dists/Release", status=301)
    assert fetcher.get(srv.url_for("old/Release")) == META
    srv.redirect("a", "b")
    srv.redirect("b", "a")
    assert error(fetcher.get, srv.url_for("a")) == f"{srv.url_for('a')}: redirect loop"
    for i in range(12):
        srv.redirect(f"r{i}", f"r{i + 1}")
    assert error(fetcher.get, srv.url_for("r0")).endswith("too many redirects (more than 10)")
    srv.redirect("bad", "ftp://127.0.0.1/x")
    assert "redirect to an unsupported URL" in error(fetcher.get, srv.url_for("bad"))


def test_unsupported_scheme(fetcher):
    assert error(fetcher.get, "ftp://127.0.0.1/x") == "ftp://127.0.0.1/x: unsupported URL scheme 'ftp'"
    assert error(fetcher.get, "http://127.0.0.1:port/x") == "http://127.0.0.1:port/x: invalid port in the URL '127.0.0.1:port'"
    assert error(fetcher.get, "http:///x") == "http:///x: no host in the URL"


# -- sizes and digests -----------------------------------------------------------------------


@pytest.mark.parametrize("announce", [True, False])
def test_body_larger_than_expected(srv, fetcher, cache, announce):
    srv.oversize("pool/a.deb", b"X" * 5000, announce=announce)
    url = srv.url_for("pool/a.deb")
    msg = error(fetcher.get_file, url, sha256=DEB_SHA, size=len(DEB))
    assert msg.startswith(f"{url}: larger than expected (") and msg.endswith(f"expected {len(DEB)})")
    assert objects(cache) == [] and partials(cache) == []
    assert "larger than expected" in error(fetcher.get, url, sha256=DEB_SHA, size=len(DEB))
    assert objects(cache) == []


def test_metadata_limit(srv, fetcher):
    msg = error(fetcher.get, srv.url_for("pool/a.deb"), max_size=1000)
    assert msg.endswith("larger than the 1000-byte limit (300000 bytes)")


def test_body_smaller_than_expected(srv, fetcher, cache):
    url = srv.url_for("dists/Release")
    assert error(fetcher.get, url, size=len(META) + 1).endswith(
        f"size mismatch (got {len(META)} bytes, expected {len(META) + 1})")
    assert error(fetcher.get_file, url, sha256=META_SHA, size=len(META) + 1).endswith("size mismatch "
                                                                                      f"(got {len(META)} bytes, expected {len(META) + 1})")
    assert objects(cache) == [] and partials(cache) == []


def test_hash_mismatch_caches_nothing(srv, fetcher, cache):
    url = srv.url_for("pool/a.deb")
    wrong = hashlib.sha256(b"another").hexdigest()
    msg = error(fetcher.get_file, url, sha256=wrong, size=len(DEB))
    assert msg == f"{url}: SHA256 mismatch (got {DEB_SHA}, expected {wrong})"
    assert objects(cache) == [] and partials(cache) == []
    assert "SHA256 mismatch" in error(fetcher.get, url, sha256=wrong)
    assert objects(cache) == []


def test_damaged_cache_file_is_fetched_again(srv, fetcher, cache):
    url = srv.url_for("pool/a.deb")
    p = fetcher.get_file(url, sha256=DEB_SHA, size=len(DEB))
    with open(p, "r+b") as f:
        f.seek(100)
        f.write(b"\0\0\0\0")
    assert fetcher.get_file(url, sha256=DEB_SHA, size=len(DEB)) == p
    assert sha256_file(p) == DEB_SHA and srv.count("/pool/a.deb") == 2
    fetcher.get(srv.url_for("dists/Release"), sha256=META_SHA)
    with open(cache.path(META_SHA), "ab") as f:
        f.write(b"tail")
    assert fetcher.get(srv.url_for("dists/Release"), sha256=META_SHA) == META
    assert srv.count("/dists/Release") == 2


# -- interrupted downloads -------------------------------------------------------------------


def test_dropped_connection_resumes_with_range(srv, fetcher):
    srv.drop("pool/a.deb", after=100_000)
    p = fetcher.get_file(srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA
    assert [r.range for r in srv.requests] == [None, "bytes=100000-"]
    srv.drop("dists/Release", after=10)  # metadata resumes too (in memory)
    assert fetcher.get(srv.url_for("dists/Release")) == META
    assert srv.requests[-1].range == "bytes=10-"


def test_if_range_splice_guard(srv, repo, fetcher):
    new = b"Origin: Test\nSuite: changed\n" * 40
    state = {"n": 0}

    def replace(request):
        state["n"] += 1
        if state["n"] == 2:  # the retry: the file has changed since the first bytes were sent
            (repo / "dists" / "Release").write_bytes(new)
            os.utime(repo / "dists" / "Release", (time.time() + 5,) * 2)

    srv.before("dists/Release", replace, times=2)
    srv.drop("dists/Release", after=100)
    assert fetcher.get(srv.url_for("dists/Release")) == new  # not META[:100] + new[100:]
    assert srv.requests[-1].range == "bytes=100-" and srv.requests[-1].headers.get("if-range")


def test_resume_in_a_later_run(srv, cache):
    url = srv.url_for("pool/a.deb")
    srv.drop("pool/a.deb", after=70_000, times=2)
    f1 = Fetcher(cache, retries=1, backoff=0.01)
    msg = error(f1.get_file, url, sha256=DEB_SHA, size=len(DEB))
    assert msg.startswith(f"{url}: connection closed after 140000 bytes")
    assert not cache.has(DEB_SHA)
    assert os.path.getsize(cache.partial_path(DEB_SHA)) == 140_000  # kept, never served
    f2 = Fetcher(Cache(cache.root), retries=0)
    p = f2.get_file(url, sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA and srv.requests[-1].range == "bytes=140000-"
    assert partials(cache) == []


def test_server_ignoring_range(srv, fetcher):
    srv.drop("pool/a.deb", after=50_000)
    srv.no_range("pool/a.deb")
    p = fetcher.get_file(srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA  # the 200 answer was read from byte 0


def test_stale_partial_is_fetched_whole(srv, fetcher, cache):
    # a .part left by an older file of the same name: the resumed result does not match, so
    # the file is fetched once more from byte 0
    with open(cache.partial_path(DEB_SHA), "wb") as f:
        f.write(b"\xee" * 1000)
    p = fetcher.get_file(srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA
    assert [r.range for r in srv.requests] == ["bytes=1000-", None]


def test_partial_longer_than_the_file_is_dropped(srv, fetcher, cache):
    with open(cache.partial_path(DEB_SHA), "wb") as f:
        f.write(b"\xee" * (len(DEB) + 10))
    assert sha256_file(fetcher.get_file(srv.url_for("pool/a.deb"), sha256=DEB_SHA, size=len(DEB))) == DEB_SHA
    assert [r.range for r in srv.requests] == [None]


def test_two_processes_download_once(srv, cache):
    # both want the same .deb at once; the server stalls so the second arrives while the
    # first downloads: it waits on the lock and then finds the file in the cache
    srv.slow("pool/a.deb", 1.0, body=True, times=1)
    code = """
        import sys
        from nuwa.apt.cache import Cache
        from nuwa.apt.fetch import Fetcher
        p = Fetcher(Cache(sys.argv[1]), timeout=10).get_file(sys.argv[2], sha256=sys.argv[3], size=int(sys.argv[4]))
        print(p)
        """
    args = [cache.root, srv.url_for("pool/a.deb"), DEB_SHA, len(DEB)]
    procs = []
    for _ in range(2):
        procs.append(subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
                                      env={**os.environ, "PYTHONPATH": REPO}, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
        time.sleep(0.2)
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {o.strip() for o, _ in outs} == {cache.path(DEB_SHA)}
    assert sha256_file(cache.path(DEB_SHA)) == DEB_SHA
    assert srv.count("/pool/a.deb") == 1 and partials(cache) == []


# -- offline, proxies, TLS, credentials ------------------------------------------------------


def test_offline(srv, cache):
    url = srv.url_for("pool/a.deb")
    Fetcher(cache).get_file(url, sha256=DEB_SHA, size=len(DEB))
    off = Fetcher(cache, offline=True)
    n = len(srv.requests)
    assert sha256_file(off.get_file(url, sha256=DEB_SHA, size=len(DEB))) == DEB_SHA
    meta = srv.url_for("dists/Release")
    assert error(off.get, meta, sha256=META_SHA) == f"{meta}: not in the cache, and downloading is off (--offline)"
    assert "--offline" in error(off.get, meta)
    assert "--offline" in error(off.exists, meta)
    assert len(srv.requests) == n  # nothing reached the server


def test_offline_reads_local_repositories(repo, cache):
    off = Fetcher(cache, offline=True)
    assert off.get(f"file:{repo}/dists/Release") == META  # a local read is not a download
    assert off.exists(f"file:{repo}/dists/Release")


def test_through_a_proxy(srv, cache):
    # the host name is only ever sent to the proxy (the local server); nothing resolves it
    f = Fetcher(cache, proxy=f"http://u:p%40ss@127.0.0.1:{srv.port}", retries=0)
    assert f.get("http://repo.test/dists/Release") == META
    r = srv.requests[-1]
    assert r.proxied_host == "repo.test" and r.path == "/dists/Release"
    assert r.headers["proxy-authorization"] == "Basic dTpwQHNz"  # u:p@ss
    p = f.get_file("http://repo.test/pool/a.deb", sha256=DEB_SHA, size=len(DEB))
    assert sha256_file(p) == DEB_SHA


def test_proxy_config_as_apt_decides():
    conf = {"Acquire::http::Proxy": "http://proxy:3142", "Acquire::http::Proxy::local.test": "DIRECT"}
    pc = ProxyConfig(conf.get, {"https_proxy": "http://envproxy:8080", "no_proxy": "inside.test,.corp.test"})
    assert pc.for_url("http://repo.test/x") == "http://proxy:3142"
    assert pc.for_url("http://local.test/x") is None
    assert pc.for_url("https://repo.test/x") == "http://envproxy:8080"
    assert pc.for_url("https://inside.test/x") is None and pc.for_url("https://a.corp.test/x") is None
    assert ProxyConfig(None, {"HTTP_PROXY": "http://p:1"}).for_url("http://x.test/") == "http://p:1"
    assert ProxyConfig.fixed("DIRECT").for_url("http://x.test/") is None
    assert ProxyConfig.fixed(None).for_url("http://x.test/") is None
    assert ProxyConfig.fixed("http://p:1").for_url("https://x.test/") == "http://p:1"


def test_https_through_a_proxy(repo, srv, cache):
    with Server(str(repo), tls=True) as tls:
        f = Fetcher(cache, proxy=f"http://u:pw@127.0.0.1:{srv.port}", ssl_context=tls.client_context(), retries=0)
        url = tls.url_for("dists/Release")
        assert f.get(url) == META
        connect = [r for r in srv.requests if r.method == "CONNECT"]
        assert [r.path for r in connect] == [f"127.0.0.1:{tls.port}"]
        assert connect[0].headers["proxy-authorization"] == "Basic dTpwdw=="
        assert tls.count("/dists/Release") == 1  # the request itself went through the tunnel


def test_https(repo, cache):
    with Server(str(repo), tls=True) as s:
        url = s.url_for("dists/Release")
        assert Fetcher(cache, ssl_context=s.client_context()).get(url) == META
        msg = error(Fetcher(cache, retries=2, backoff=0.01).get, url)  # the host's CAs do not know it
        assert msg.startswith(f"{url}: TLS certificate verification failed") and "attempts" not in msg
        s.redirect("down", "http://127.0.0.1:1/x")
        assert "redirect from https to http refused" in error(
            Fetcher(cache, ssl_context=s.client_context()).get, s.url_for("down"))


def test_credentials_are_sent_but_not_shown(srv, fetcher):
    url = f"http://user:secret@127.0.0.1:{srv.port}/missing"
    msg = error(fetcher.get, url)
    assert msg == f"http://user:***@127.0.0.1:{srv.port}/missing: 404 Not Found"
    assert srv.requests[-1].headers["authorization"] == "Basic dXNlcjpzZWNyZXQ="
    assert display_url("http://127.0.0.1/x") == "http://127.0.0.1/x"
    assert display_url("http://u:p@[::1]:80/x") == "http://u:***@[::1]:80/x"


def test_unusual_file_names_are_escaped(srv, repo, fetcher):
    (repo / "pool" / "a b+c~ü.deb").write_bytes(b"odd")
    assert fetcher.get(f"{srv.url}/pool/a b+c~ü.deb") == b"odd"
    assert fetcher.get(f"{srv.url}/pool/a%20b+c~%C3%BC.deb") == b"odd"  # escapes kept as given


def test_only_http_proxies(srv, cache):
    from nuwa.errors import InvalidInputError
    with pytest.raises(InvalidInputError, match=r"^proxy 'socks5h://127.0.0.1:9': only http:// proxies are supported$"):
        Fetcher(cache, proxy="socks5h://127.0.0.1:9").get(srv.url_for("dists/Release"))
