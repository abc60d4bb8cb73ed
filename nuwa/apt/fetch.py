"""Downloads: HTTP(S) and ``file:`` URLs, with retries, timeouts, a proxy, redirects, Range
resume and the size and SHA-256 enforced, through the content-addressed :class:`Cache`.

The transport is the standard library's ``http.client`` (one kept-alive connection per host and
thread) rather than urllib's opener: Range requests, a size limit enforced while the body
streams, redirect-loop detection and per-attempt error messages all need the response before
urllib would interpret it. What apt does is the model (``methods/basehttp.cc``, ``http.cc``):

- a redirect is followed up to :data:`MAX_REDIRECTS` times, never from https to http, and a
  URL seen twice in one chain is "redirect loop";
- 5xx answers, 408/429, refused or dropped connections and timeouts are retried with doubling
  back-off; 404/410 and other 4xx answers are final;
- a body larger than the size the caller expects (from ``Packages`` or ``Release``) is cut off
  as soon as it passes that size and refused; a shorter one is "size mismatch";
- a dropped download keeps its bytes (in memory for metadata, in the cache's ``partial/`` for a
  ``.deb``) and the next attempt asks for the rest with ``Range: bytes=N-``; a server that
  answers 200 instead of 206 is read from the start again. The final SHA-256 decides: a resumed
  file that does not match is fetched once more from byte 0.

Every error is a one-line :class:`RepositoryError` naming the URL (without a password) and
the reason: ``404 Not Found``, ``connection refused``, ``timed out after 30 s``,
``redirect loop``, ``larger than expected``, ``size mismatch``, ``SHA256 mismatch``.
"""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Mapping

from nuwa.apt.cache import Cache
from nuwa.errors import InvalidInputError, RepositoryError

#: the most redirects one download follows (apt's Acquire::http::MaxRedirects default is 10)
MAX_REDIRECTS = 10
#: the longest pause between two attempts, whatever the back-off has grown to
MAX_BACKOFF = 10.0
#: read size: 256 KiB measured fastest against 64 KiB and 1 MiB on a local server
_CHUNK = 1 << 18
_REDIRECTS = (301, 302, 303, 307, 308)
#: answers worth another attempt: the server or something between is busy or broken for now
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
USER_AGENT = "nuwa (apt-compatible fetcher)"
_PATH_SAFE = "/%:@!$&'()*+,;=~-._"


def display_url(url: str) -> str:
    """``url`` as messages show it: a password in it replaced by ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@" + parts.netloc.rsplit("@", 1)[1]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class _Retry(Exception):
    """An attempt failed in a way another attempt may not (the reason is the message)."""


class _Final(Exception):
    """An attempt failed for good; ``not_found`` for 404/410 or a missing local file."""

    def __init__(self, reason: str, not_found: bool = False, bad_data: bool = False):
        super().__init__(reason)
        self.not_found = not_found
        self.bad_data = bad_data  # the bytes held so far are wrong: drop them, do not resume


# -- proxies ---------------------------------------------------------------------------------


class ProxyConfig:
    """Which proxy a URL goes through, as apt decides (``methods/http.cc``, ``Acquire::http``).

    In order: ``Acquire::<scheme>::Proxy::<host>`` (a URL, or ``DIRECT`` for none), then
    ``Acquire::<scheme>::Proxy``, then the environment's ``<scheme>_proxy`` unless the host is
    in ``no_proxy``. ``lookup(key)`` returns an apt.conf value or ``None`` (for example
    ``lambda k: conf.get(k, None)`` over the image's apt configuration); ``environ`` is the
    environment to read (``{}`` to ignore it). Only ``http://`` proxies are supported, as apt's
    http method supports them (a ``CONNECT`` tunnel carries https).
    """

    def __init__(self, lookup: Callable[[str], str | None] | None = None, environ: Mapping[str, str] | None = None):
        self.lookup = lookup or (lambda key: None)
        self.environ = {} if environ is None else dict(environ)

    @classmethod
    def fixed(cls, proxy: str | None) -> "ProxyConfig":
        """One proxy for every http and https URL (``None``, ``""`` or ``DIRECT``: none)."""
        return cls(lambda key: proxy if key.count("::") == 2 else None, {})

    def for_url(self, url: str) -> str | None:
        """The proxy URL ``url`` goes through, or ``None`` for a direct connection."""
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname or ""
        for key in (f"Acquire::{scheme}::Proxy::{host}", f"Acquire::{scheme}::Proxy"):
            value = self.lookup(key)
            if value is not None and value != "":
                return None if value.upper() == "DIRECT" else value
        env = {k.lower(): v for k, v in self.environ.items()}
        value = env.get(f"{scheme}_proxy")
        if not value:
            return None
        for entry in (e.strip().lower() for e in env.get("no_proxy", "").split(",")):
            if entry == "*" or (entry and (host == entry.lstrip(".") or host.endswith("." + entry.lstrip(".")))):
                return None
        return value


# -- where the bytes go ----------------------------------------------------------------------


class _MemorySink:
    """Bytes of a metadata file, kept across attempts so a dropped one is resumed."""

    def __init__(self):
        self.buf = bytearray()
        self.validator = None  # the ETag or Last-Modified of the bytes held (for If-Range)

    @property
    def offset(self) -> int:
        return len(self.buf)

    def write(self, data: bytes) -> None:
        self.buf += data

    def reset(self) -> None:
        self.buf.clear()


class _FileSink:
    """The ``.part`` file of one object: opened for appending, so a later run resumes it."""

    def __init__(self, path: str, size: int):
        self.path = path
        self.f = open(path, "ab")
        self.f.seek(0, os.SEEK_END)
        if self.f.tell() > size:  # longer than the object can be: not a prefix of it
            self.reset()
        self.resumed_from = self.f.tell()
        self.validator = None  # known only for bytes this run received

    @property
    def offset(self) -> int:
        return self.f.tell()

    def write(self, data: bytes) -> None:
        self.f.write(data)

    def reset(self) -> None:
        self.f.truncate(0)
        self.f.seek(0)

    def close(self) -> None:
        self.f.close()


# -- the fetcher -----------------------------------------------------------------------------


class Fetcher:
    """Downloads through ``cache``; see the module docstring for the rules it follows.

    ``proxy``: a proxy URL for all http(s) URLs, or a :class:`ProxyConfig`; ``timeout``: the
    seconds one connect or one read may take; ``retries``: attempts after the first; ``backoff``:
    the first pause between attempts (doubled each time); ``offline``: serve only from the
    cache; ``progress``: a :class:`nuwa.apt.progress.Progress` (or ``None``); ``ssl_context``:
    the TLS trust to use (default: the host's CA store).
    """

    def __init__(self, cache: Cache, *, proxy: str | ProxyConfig | None = None, timeout: float = 30.0,
                 retries: int = 3, offline: bool = False, progress=None, backoff: float = 0.5,
                 ssl_context: ssl.SSLContext | None = None, max_redirects: int = MAX_REDIRECTS):
        self.cache = cache
        self.proxy = proxy if isinstance(proxy, ProxyConfig) else ProxyConfig.fixed(proxy)
        self.timeout = timeout
        self.retries = retries
        self.offline = offline
        self.progress = progress
        self.backoff = backoff
        self.ssl_context = ssl_context
        self.max_redirects = max_redirects
        self._local = threading.local()  # each thread its own kept-alive connections
        self._all_conns: list[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()

    # -- the public calls ------------------------------------------------------------------

    def get(self, url: str, *, sha256: str | None = None, size: int | None = None,
            max_size: int = 64 << 20, missing_ok: bool = False) -> bytes | None:
        """The bytes at ``url`` (metadata). With ``sha256`` they are served from the cache when
        present and stored there once checked; without, they are not cached. ``size``, when
        given, must match; at most ``max_size`` bytes are accepted otherwise. With
        ``missing_ok``, a 404/410 (or a missing ``file:``) gives ``None`` instead of an error.
        """
        if sha256 is not None:
            data = self.cache.read(sha256, size)
            if data is not None:
                self._hit(url)
                return data
        self._online(url)
        sink = _MemorySink()
        # a file named by its digest never changes; one without (InRelease) may have, so a
        # proxy on the way must revalidate it, as apt asks (Acquire::http::Max-Age 0 for indexes)
        fresh = sha256 is None
        try:
            self._download(url, sink, limit=size if size is not None else max_size, size=size, fresh=fresh)
        except _Final as e:
            if missing_ok and e.not_found:
                return None
            raise self._error(url, str(e)) from None
        data = bytes(sink.buf)
        if sha256 is not None:
            self.cache.put_bytes(data, sha256, where=display_url(url))
        return data

    def get_file(self, url: str, *, sha256: str, size: int) -> str:
        """Download a ``.deb`` (or any large file) into the cache and return its path there.

        An interrupted download is resumed from its ``.part`` (in this run or a later one);
        the file is stored under its hash only after size and SHA-256 both matched. Two
        processes asking for the same file download it once: the second waits for the first.
        """
        p = self.cache.verified_path(sha256, size)
        if p is not None:
            self._hit(url)
            return p
        self._online(url)
        with self.cache.lock(sha256):
            p = self.cache.verified_path(sha256, size)
            if p is not None:  # another run fetched it while this one waited for the lock
                self._hit(url)
                return p
            part = self.cache.partial_path(sha256)
            for again in (False, True):
                sink = _FileSink(part, size)
                try:
                    self._download(url, sink, limit=size, size=size)
                except _Final as e:
                    sink.close()
                    if e.bad_data:  # not a prefix of the file: nothing to resume from
                        _unlink(part)
                    raise self._error(url, str(e)) from None
                finally:
                    sink.close()
                try:
                    return self.cache.put_file(part, sha256, size, where=display_url(url))
                except RepositoryError:
                    # a resumed prefix may come from an older file of the same name; the
                    # whole file is fetched once more before the mismatch is believed
                    if again or not sink.resumed_from:
                        raise
        raise AssertionError("unreachable")

    def get_files(self, items: Iterable[tuple[str, str, int]], *, workers: int = 4) -> list[str]:
        """:meth:`get_file` for each ``(url, sha256, size)``, ``workers`` downloads at a time
        (as apt's ``Acquire::Queue-Mode``); the paths in the order given; the first error raised."""
        items = list(items)
        if self.progress is not None:
            self.progress.expect(len(items), sum(s for _, _, s in items))
        if workers <= 1 or len(items) <= 1:
            return [self.get_file(u, sha256=h, size=s) for u, h, s in items]
        pool = ThreadPoolExecutor(max_workers=workers)
        try:
            futures = [pool.submit(self.get_file, u, sha256=h, size=s) for u, h, s in items]
            return [f.result() for f in futures]
        finally:
            # after an error the downloads not yet started are dropped, not waited for
            pool.shutdown(wait=True, cancel_futures=True)

    def exists(self, url: str) -> bool:
        """Whether ``url`` exists: ``False`` for 404/410 (or a missing ``file:``), ``True`` for
        a 2xx answer; any other failure (after retries) is a :class:`RepositoryError`."""
        self._online(url)
        if _scheme(url) == "file":
            return os.path.isfile(_file_path(url))
        try:
            self._retrying(url, lambda: self._head(url))
        except _Final as e:
            if e.not_found:
                return False
            raise self._error(url, str(e)) from None
        return True

    def close(self) -> None:
        """Close the kept-alive connections (of every thread)."""
        with self._conns_lock:
            conns, self._all_conns = self._all_conns, []
        for c in conns:
            c.close()
        self._local = threading.local()

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- attempts and retries --------------------------------------------------------------

    def _online(self, url: str) -> None:
        # a file: URL is a local read, not a download: --offline allows it
        if self.offline and _scheme(url) != "file":
            raise self._error(url, "not in the cache, and downloading is off (--offline)")
        if _scheme(url) not in ("http", "https", "file"):
            raise self._error(url, f"unsupported URL scheme {_scheme(url)!r}")

    def _error(self, url: str, reason: str) -> RepositoryError:
        return RepositoryError(f"{display_url(url)}: {reason}")

    def _hit(self, url: str) -> None:
        if self.progress is not None:
            self.progress.done(url)

    def _retrying(self, url: str, attempt: Callable[[], None]) -> None:
        # one first attempt and self.retries more on transient failures, with back-off
        for n in range(self.retries + 1):
            try:
                return attempt()
            except _Retry as e:
                if n == self.retries:
                    raise self._error(url, str(e) + (f" ({n + 1} attempts)" if n else "")) from None
                time.sleep(min(self.backoff * (2 ** n), MAX_BACKOFF))

    def _download(self, url: str, sink, *, limit: int, size: int | None, fresh: bool = False) -> None:
        if self.progress is not None:
            self.progress.start(url, size)
        if _scheme(url) == "file":
            self._read_file(url, sink, limit, size)
        else:
            extra = {"Cache-Control": "max-age=0"} if fresh else {}
            self._retrying(url, lambda: self._http_get(url, sink, limit, size, extra))
        if size is not None and sink.offset != size:
            raise _Final(f"size mismatch (got {sink.offset} bytes, expected {size})", bad_data=True)
        if self.progress is not None:
            self.progress.done(url)

    def _read_file(self, url: str, sink, limit: int, size: int | None) -> None:
        path = _file_path(url)
        sink.reset()
        try:
            with open(path, "rb") as f:
                n = os.fstat(f.fileno()).st_size
                if n > limit:
                    raise _Final(_too_large(n, limit, size), bad_data=True)
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    sink.write(chunk)
                    if self.progress is not None:
                        self.progress.advance(len(chunk))
        except FileNotFoundError:
            raise _Final("No such file", not_found=True) from None
        except IsADirectoryError:
            raise _Final("is a directory") from None
        except OSError as e:
            raise _Final(e.strerror or str(e)) from None

    def _http_get(self, url: str, sink, limit: int, size: int | None, extra: dict) -> None:
        offset = sink.offset
        if size is not None and offset == size:
            return  # a previous attempt got every byte; the hash check decides
        headers = dict(extra)
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if sink.validator:
                # RFC 9110 section 13.1.5: the rest only if the file is still the one whose
                # start we hold; else the whole new file (200). A mirror may update meanwhile.
                headers["If-Range"] = sink.validator
        conn, resp, final_url = self._open("GET", url, headers)
        try:
            status = resp.status
            if status == 416 and offset:
                sink.reset()  # our bytes are not a prefix the server knows: start again
                raise _Retry("416 Range Not Satisfiable")
            if status == 206 and offset:
                start = _content_range_start(resp.getheader("Content-Range", ""))
                if start != offset:
                    sink.reset()
                    raise _Retry(f"206 with an unexpected Content-Range {resp.getheader('Content-Range')!r}")
            elif status == 200:
                sink.reset()  # no Range asked, or the server ignored it, or the file changed
            else:
                raise _status_error(resp)
            if status == 200:
                etag = resp.getheader("ETag") or ""
                sink.validator = etag if etag and not etag.startswith("W/") else resp.getheader("Last-Modified")
            length = resp.getheader("Content-Length")
            if length is not None and length.isdigit() and sink.offset + int(length) > limit:
                raise _Final(_too_large(sink.offset + int(length), limit, size), bad_data=True)
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    # read(amt) returns b"" at a premature end instead of raising
                    if resp.length:
                        raise http.client.IncompleteRead(b"", resp.length)
                    break
                if sink.offset + len(chunk) > limit:
                    sink.write(chunk[: limit - sink.offset])
                    raise _Final(_too_large(None, limit, size), bad_data=True)
                sink.write(chunk)
                if self.progress is not None:
                    self.progress.advance(len(chunk))
        except http.client.IncompleteRead as e:
            self._drop(conn)
            raise _Retry(f"connection closed after {sink.offset} bytes "
                         f"({e.expected} more were announced)") from None
        except BaseException as e:
            self._drop(conn)
            if isinstance(e, (_Retry, _Final)):
                raise
            raise _transport_error(e, self.timeout) from None
        if resp.will_close:
            self._drop(conn)

    def _head(self, url: str) -> None:
        conn, resp, _ = self._open("HEAD", url, {})
        try:
            resp.read()
        except BaseException as e:
            self._drop(conn)
            raise _transport_error(e, self.timeout) from None
        if resp.will_close:
            self._drop(conn)
        if resp.status in (405, 501):
            # a server without HEAD: ask for the first byte instead, and hang up on the rest
            conn, resp, _ = self._open("GET", url, {"Range": "bytes=0-0"})
            self._drop(conn)
        if not 200 <= resp.status < 300:
            raise _status_error(resp)

    # -- HTTP connections ------------------------------------------------------------------

    def _open(self, method: str, url: str, headers: dict) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse, str]:
        """Send the request and follow redirects; return the final answer with its headers read."""
        seen = {url}
        for _ in range(self.max_redirects + 1):
            conn, resp = self._request(method, url, headers)
            if resp.status not in _REDIRECTS:
                return conn, resp, url
            location = resp.getheader("Location")
            try:
                resp.read()  # the redirect's own body, so the connection can be used again
            except BaseException as e:
                self._drop(conn)
                raise _transport_error(e, self.timeout) from None
            if resp.will_close:
                self._drop(conn)
            if not location:
                raise _Final(f"{resp.status} redirect without a Location")
            target = urllib.parse.urljoin(url, location)
            if _scheme(target) not in ("http", "https"):
                raise _Final(f"redirect to an unsupported URL {display_url(target)!r}")
            if _scheme(url) == "https" and _scheme(target) == "http":
                raise _Final(f"redirect from https to http refused ({display_url(target)})")
            if target in seen:
                raise _Final("redirect loop")
            seen.add(target)
            url = target
        raise _Final(f"too many redirects (more than {self.max_redirects})")

    def _request(self, method: str, url: str, headers: dict):
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
        if not host:
            raise _Final("no host in the URL")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise _Final(f"invalid port in the URL {parts.netloc.rsplit('@', 1)[-1]!r}") from None
        proxy = self.proxy.for_url(url)
        # a space or a non-ASCII byte in a pool file name is sent %-escaped, as apt's
        # QuoteString does; escapes already present are kept
        upath = urllib.parse.quote(parts.path or "/", safe=_PATH_SAFE)
        path = urllib.parse.urlunsplit(("", "", upath, parts.query, ""))
        hdrs = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity", **headers}
        if parts.username is not None:
            hdrs["Authorization"] = _basic(parts.username, parts.password or "")
        if proxy and scheme == "http":
            # through a proxy, plain http asks for the absolute URL (RFC 9112 section 3.2.2)
            path = urllib.parse.urlunsplit((scheme, parts.netloc.rsplit("@", 1)[-1], upath, parts.query, ""))
            pauth = _proxy_auth(proxy)
            if pauth:
                hdrs["Proxy-Authorization"] = pauth
        key = (scheme, host, port, proxy)
        pool = self._local.__dict__.setdefault("conns", {})
        for fresh in ((False, True) if key in pool else (True,)):
            try:
                conn = pool.get(key) if not fresh else None
                if conn is None:
                    conn = self._connect(scheme, host, port, proxy)
                    pool[key] = conn
                conn.request(method, path, headers=hdrs)
                return conn, conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                # a kept-alive connection the server closed meanwhile: try a new one once,
                # without counting it as an attempt
                self._drop(pool.pop(key, None))
                if fresh:
                    raise _transport_error(e, self.timeout) from None
            except BaseException as e:
                self._drop(pool.pop(key, None))
                raise _transport_error(e, self.timeout) from None
        raise AssertionError("unreachable")

    def _connect(self, scheme: str, host: str, port: int, proxy: str | None) -> http.client.HTTPConnection:
        if proxy:
            pp = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
            if pp.scheme != "http" or not pp.hostname:
                raise InvalidInputError(f"proxy {display_url(proxy)!r}: only http:// proxies are supported")
            phost, pport = pp.hostname, pp.port or 80
        if scheme == "https":
            ctx = self.ssl_context or ssl.create_default_context()
            if proxy:
                conn = http.client.HTTPSConnection(phost, pport, timeout=self.timeout, context=ctx)
                pauth = _proxy_auth(proxy)
                conn.set_tunnel(host, port, headers={"Proxy-Authorization": pauth} if pauth else None)
            else:
                conn = http.client.HTTPSConnection(host, port, timeout=self.timeout, context=ctx)
        elif proxy:
            conn = http.client.HTTPConnection(phost, pport, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        with self._conns_lock:
            self._all_conns.append(conn)
        return conn

    def _drop(self, conn) -> None:
        if conn is None:
            return
        conn.close()
        pool = self._local.__dict__.get("conns", {})
        for k, c in list(pool.items()):
            if c is conn:
                del pool[k]
        with self._conns_lock:
            if conn in self._all_conns:
                self._all_conns.remove(conn)


# -- helpers ---------------------------------------------------------------------------------


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _scheme(url: str) -> str:
    return url.split(":", 1)[0].lower() if ":" in url else ""


def _file_path(url: str) -> str:
    # file:/srv/repo/x and file:///srv/repo/x both name /srv/repo/x (apt accepts both)
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path)


def _basic(user: str, password: str) -> str:
    raw = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _proxy_auth(proxy: str) -> str | None:
    pp = urllib.parse.urlsplit(proxy if "://" in proxy else "http://" + proxy)
    return _basic(pp.username, pp.password or "") if pp.username is not None else None


def _content_range_start(value: str) -> int | None:
    # "bytes 100-199/200" (RFC 9110 section 14.4)
    try:
        unit, rest = value.split(" ", 1)
        return int(rest.split("-", 1)[0]) if unit.strip().lower() == "bytes" else None
    except ValueError:
        return None


def _too_large(got: int | None, limit: int, size: int | None) -> str:
    what = f"{got} bytes" if got is not None else f"more than {limit} bytes"
    if size is not None:
        return f"larger than expected ({what}, expected {size})"
    return f"larger than the {limit}-byte limit ({what})"


def _status_error(resp: http.client.HTTPResponse) -> Exception:
    reason = f"{resp.status} {resp.reason}".strip()
    if resp.status in _RETRY_STATUS:
        return _Retry(reason)
    return _Final(reason, not_found=resp.status in (404, 410))


def _transport_error(e: BaseException, timeout: float) -> Exception:
    """A socket or protocol failure as a retry (or a final error for TLS trust failures)."""
    if isinstance(e, (_Retry, _Final, InvalidInputError)):
        return e
    if isinstance(e, ssl.SSLCertVerificationError):
        return _Final(f"TLS certificate verification failed: {e.verify_message or e.reason}")
    if isinstance(e, ssl.SSLError):
        return _Final(f"TLS error: {e.reason or e}")
    if isinstance(e, (socket.timeout, TimeoutError)):
        return _Retry(f"timed out after {timeout:g} s")
    if isinstance(e, ConnectionRefusedError):
        return _Retry("connection refused")
    if isinstance(e, socket.gaierror):
        return _Retry(f"cannot resolve the host name ({e.strerror})")
    if isinstance(e, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)):
        return _Retry("connection closed by the server")
    if isinstance(e, http.client.InvalidURL):
        return _Final(f"invalid URL ({e})")
    if isinstance(e, http.client.HTTPException):
        return _Retry(f"bad HTTP response ({type(e).__name__})")
    if isinstance(e, OSError):
        return _Retry(e.strerror or str(e))
    if isinstance(e, (KeyboardInterrupt, SystemExit, MemoryError)):
        return e
    return _Final(f"{type(e).__name__}: {e}")
