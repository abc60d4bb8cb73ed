"""A local HTTP(S) server for the apt tests: a directory served on 127.0.0.1 (an ephemeral
port) from a thread, with the faults a real mirror or the network between can show.

    with Server(repo_dir) as srv:
        srv.fail("/dists/x/InRelease", 500, times=2)   # two 500 answers, then the file
        srv.slow("/pool/a.deb", 2.0)                     # 2 s before the answer
        srv.drop("/pool/a.deb", after=1000)              # headers, 1000 bytes, then hang up
        fetcher.get(srv.url_for("dists/x/InRelease"))
        assert srv.count("/dists/x/InRelease") == 3

Faults (each on one URL path, for ``times`` requests, ``None`` = every request; the oldest
matching fault is used first): ``fail`` (any status), ``slow`` (a pause before the headers, or
with ``body=True`` after the first bytes of the body), ``redirect`` (to another path or URL;
two redirects pointing at each other make a loop), ``oversize`` (extra bytes after the file,
announced in Content-Length or not), ``drop`` (the connection closed after ``after`` body
bytes), ``no_range`` (Range ignored, 200 and the whole file), ``before`` (a function called
with the :class:`Request` before it is answered: to change the file between two requests).
Range requests (``bytes=N-``, ``bytes=N-M``) are otherwise answered with 206, or 416 past the
end; ``If-Range`` is honoured against the ETag and Last-Modified every file is served with
(a changed file is sent whole, with 200). HTTP/1.1 keep-alive.

The server also answers as an HTTP proxy would: a request for an absolute URL
(``GET http://repo.test/x``) is served from the same directory, and ``requests`` records it as
proxied, with the host asked for (nothing is looked up: the name never leaves the process).
A ``CONNECT 127.0.0.1:PORT`` (how a client reaches an https URL through a proxy) opens a
tunnel to that port, and only on 127.0.0.1. ``Server(root, tls=True)`` serves HTTPS with a certificate for 127.0.0.1 made at start
(``ca_file`` is the certificate a client must trust). Every request is recorded in
``requests`` (method, path, headers, proxied host).
"""

from __future__ import annotations

import datetime
import email.utils
import http.server
import os
import select
import shutil
import socket
import ssl
import tempfile
import threading
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Request:
    """One request the server received."""

    method: str
    path: str  # the URL path, unquoted
    headers: dict
    proxied_host: str | None = None  # the host of an absolute-URL (proxy) request
    client: tuple = ()  # the client's (address, port): one port per connection

    @property
    def range(self) -> str | None:
        """The Range header, if any."""
        return self.headers.get("range")


@dataclass
class Fault:
    """One injected fault: its kind, the URL path, how many more requests it applies to."""

    kind: str
    path: str
    times: int | None
    args: dict = field(default_factory=dict)


class Server:
    """``root`` served on 127.0.0.1; start with ``with`` (or :meth:`start`/:meth:`stop`)."""

    def __init__(self, root: str, *, tls: bool = False):
        self.root = os.path.abspath(root)
        self.tls = tls
        self.requests: list[Request] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = None
        self._thread = None
        self._tmp = None
        self.ca_file: str | None = None

    # -- life ------------------------------------------------------------------------------

    def start(self) -> "Server":
        """Bind an ephemeral port on 127.0.0.1 and serve from a daemon thread."""
        srv = self

        class Handler(_Handler):
            server_obj = srv

        httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False  # a handler sleeping in a slow fault must not hold stop()
        if self.tls:
            self._tmp = tempfile.mkdtemp(prefix="httpserve-")
            cert, key = _self_signed(self._tmp)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
            self.ca_file = cert
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (sleeping handlers are woken)."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> "Server":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The base URL, without a trailing '/'."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def url_for(self, path: str) -> str:
        """The URL of ``path`` (relative to the served directory)."""
        return f"{self.url}/{urllib.parse.quote(path.lstrip('/'))}"

    def client_context(self) -> ssl.SSLContext:
        """A client TLS context that trusts this server's certificate (``tls=True`` only)."""
        ctx = ssl.create_default_context(cafile=self.ca_file)
        return ctx

    # -- faults ----------------------------------------------------------------------------

    def _add(self, kind: str, path: str, times: int | None, **args) -> None:
        with self._lock:
            self._faults.append(Fault(kind, "/" + path.lstrip("/"), times, args))

    def fail(self, path: str, status: int, *, times: int | None = None, method: str | None = None) -> None:
        """Answer ``status`` (404, 500, ...) with a short body (to ``method`` requests only, if given)."""
        self._add("fail", path, times, status=status, method=method)

    def slow(self, path: str, delay: float, *, times: int | None = None, body: bool = False) -> None:
        """Wait ``delay`` seconds before the answer (``body``: after the headers and 1 byte)."""
        self._add("slow", path, times, delay=delay, body=body)

    def redirect(self, path: str, target: str, *, status: int = 302, times: int | None = None) -> None:
        """Redirect ``path`` to ``target`` (a path on this server or a whole URL)."""
        self._add("redirect", path, times, target=target, status=status)

    def oversize(self, path: str, extra: bytes, *, announce: bool = True, times: int | None = None) -> None:
        """Send ``extra`` bytes after the file; ``announce``: count them in Content-Length
        (else send no Content-Length and close the connection after the body)."""
        self._add("oversize", path, times, extra=extra, announce=announce)

    def drop(self, path: str, *, after: int, times: int | None = 1) -> None:
        """Send the headers (the full Content-Length) and ``after`` body bytes, then hang up."""
        self._add("drop", path, times, after=after)

    def no_range(self, path: str, *, times: int | None = None) -> None:
        """Ignore a Range header: answer 200 with the whole file."""
        self._add("no_range", path, times)

    def before(self, path: str, fn, *, times: int | None = 1) -> None:
        """Call ``fn(request)`` before answering a request for ``path``."""
        self._add("before", path, times, fn=fn)

    def clear(self) -> None:
        """Remove every fault still pending."""
        with self._lock:
            self._faults.clear()

    def count(self, path: str, method: str = "GET") -> int:
        """How many ``method`` requests named ``path``."""
        p = "/" + path.lstrip("/")
        with self._lock:
            return sum(1 for r in self.requests if r.path == p and r.method == method)

    def _take(self, path: str, method: str, before: bool = False) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if (f.path == path and (f.kind == "before") == before
                        and f.args.get("method") in (None, method)):
                    if f.times is not None:
                        f.times -= 1
                        if f.times <= 0:
                            self._faults.remove(f)
                    return f
        return None

    def _record(self, req: Request) -> None:
        with self._lock:
            self.requests.append(req)


class _HTTPServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # a client that hangs up (a timeout, a refused oversize body, a failed TLS handshake)
        # is what the fault tests do on purpose; anything else is a bug in this helper
        import sys
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as mirrors speak it
    server_obj: Server

    def log_message(self, fmt, *args):  # the test output stays clean
        pass

    def do_HEAD(self):
        self._serve(head=True)

    def do_GET(self):
        self._serve(head=False)

    def do_CONNECT(self):
        # a proxy's tunnel (RFC 9110 section 9.3.6), to 127.0.0.1 only: tests never reach out
        srv = self.server_obj
        host, _, port = self.path.rpartition(":")
        srv._record(Request("CONNECT", self.path, {k.lower(): v for k, v in self.headers.items()}, host,
                            tuple(self.client_address)))
        if host != "127.0.0.1" or not port.isdigit():
            return self._small(403, b"tunnels go to 127.0.0.1 only\n")
        try:
            upstream = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            return self._small(502, b"no upstream\n")
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        ends = [self.connection, upstream]
        try:
            while not srv._stopping.is_set():
                ready, _, _ = select.select(ends, [], [], 0.1)
                for s in ready:
                    data = s.recv(1 << 16)
                    if not data:
                        return
                    (upstream if s is self.connection else self.connection).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _serve(self, head: bool) -> None:
        srv = self.server_obj
        raw = self.path
        proxied = None
        if "://" in raw:  # an absolute URL: a client using this server as its proxy
            u = urllib.parse.urlsplit(raw)
            proxied, raw = u.hostname, urllib.parse.urlunsplit(("", "", u.path, u.query, ""))
        path = urllib.parse.unquote(urllib.parse.urlsplit(raw).path)
        srv._record(Request(self.command, path, {k.lower(): v for k, v in self.headers.items()}, proxied,
                            tuple(self.client_address)))
        hook = srv._take(path, self.command, before=True)
        if hook:
            hook.args["fn"](srv.requests[-1])
        fault = srv._take(path, self.command)
        kind = fault.kind if fault else None
        if kind == "slow" and not fault.args["body"]:
            if srv._stopping.wait(fault.args["delay"]):
                return
        if kind == "fail":
            return self._small(fault.args["status"], b"fault\n")
        if kind == "redirect":
            target = fault.args["target"]
            if "://" not in target:
                target = srv.url + "/" + target.lstrip("/")
            return self._small(fault.args["status"], b"moved\n", {"Location": target})
        full = os.path.realpath(os.path.join(srv.root, path.lstrip("/")))
        if not (full == srv.root or full.startswith(srv.root + os.sep)) or not os.path.isfile(full):
            return self._small(404, b"not found\n")
        with open(full, "rb") as f:
            data = f.read()
            st = os.fstat(f.fileno())
        etag = f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
        modified = email.utils.formatdate(st.st_mtime, usegmt=True)
        start, end, status = 0, len(data), 200
        rng = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if if_range and if_range not in (etag, modified):
            rng = None  # RFC 9110 section 13.1.5: the file changed, send it whole
        if rng and kind != "no_range" and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            start = int(a or 0)
            end = min(int(b) + 1, len(data)) if b else len(data)
            if start >= len(data):
                return self._small(416, b"", {"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start:end]
        if kind == "oversize":
            body += fault.args["extra"]
        self.send_response(status)
        announce = not (kind == "oversize" and not fault.args["announce"])
        if announce:
            self.send_header("Content-Length", str(len(body)))
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", etag)
        self.send_header("Last-Modified", modified)
        self.end_headers()
        if head:
            return
        try:
            if kind == "slow":  # a server that stalls in the middle of the body
                self.wfile.write(body[:1])
                self.wfile.flush()
                if srv._stopping.wait(fault.args["delay"]):
                    return
                body = body[1:]
            if kind == "drop":
                self.wfile.write(body[: fault.args["after"]])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True  # the client gave up (a timeout, a refused size)

    def _small(self, status: int, body: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


def _self_signed(directory: str) -> tuple[str, str]:
    """A key and a self-signed certificate for 127.0.0.1 (made with ``cryptography``)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def refused_url(path: str = "x") -> str:
    """A URL on 127.0.0.1 where nothing listens (a port just bound and released)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/{path}"
