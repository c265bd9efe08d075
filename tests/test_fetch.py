"""`counter.Fetcher` (docs/fetch.md): fetched images and files count as the same bytes inline, every
refused address is refused before any connection, and every fetch is bounded.

Every server here listens on loopback, admitted with `allow=["127.0.0.1"]`; nothing is sent beyond it
(the refusal tests fail on any connection attempt at all).
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import ipaddress
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from test_primitives_files import pdf
from test_primitives_images import gif, jpeg, png, webp_vp8, webp_vp8l, webp_vp8x

import counter
from counter import Fetcher, InvalidRequestError
from counter._cli import main
from counter._fetch import refusal, with_urls

ALLOW = ["127.0.0.1"]
IMAGES = {
    "png": (png(1024, 768), "image/png"),
    "jpeg": (jpeg(1600, 1200), "image/jpeg"),
    "jpeg-exif": (jpeg(800, 600, exif_bytes=200_000), "image/jpeg"),  # frame header beyond the first Range
    "gif": (gif(300, 200), "image/gif"),
    "webp-vp8": (webp_vp8(640, 480), "image/webp"),
    "webp-vp8l": (webp_vp8l(2048, 100), "image/webp"),
    "webp-vp8x": (webp_vp8x(4000, 3000), "image/webp"),
}
PDF = pdf(b"BT /F1 12 Tf 72 720 Td (Hello from a fetched PDF, page one.) Tj ET")


# ------------------------------------------------------------------ a loopback server

Route = Callable[["_Handler"], None]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = self.server.routes.get(self.path.split("?", 1)[0])
        if route is None:
            self.reply(404, b"not found", "text/plain")
        else:
            route(self)

    def reply(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, Route] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stop = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that leaves mid-body (the fetcher does, on purpose) is no error here

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_port}{path}"

    def paths(self) -> list[str]:
        return [p for p, _ in self.seen]


@pytest.fixture
def server() -> Iterator[_Server]:
    with serving() as srv:
        yield srv


@contextlib.contextmanager
def serving() -> Iterator[_Server]:
    """A loopback server on a free port, stopped (its handlers too) on the way out."""
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.stop.set()
        srv.shutdown()
        srv.server_close()
        thread.join(5)


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(allow=ALLOW, timeout=5, read_timeout=2, connect_timeout=2) as f:
        yield f


def static(body: bytes, ctype: str, ranges: bool = False, headers: dict[str, str] | None = None) -> Route:
    """A route that serves `body`, honouring `Range: bytes=a-b` when `ranges`."""

    def route(h: _Handler) -> None:
        wanted = h.headers.get("range", "")
        if ranges and wanted.startswith("bytes="):
            start, _, end = wanted[6:].partition("-")
            a, b = int(start), min(int(end or len(body) - 1), len(body) - 1)
            extra = {"content-range": f"bytes {a}-{b}/{len(body)}", **(headers or {})}
            h.reply(206, body[a : b + 1], ctype, extra)
        else:
            h.reply(200, body, ctype, headers)

    return route


def endless(head: bytes, ctype: str) -> Route:
    """`head`, then junk without end (no length; the connection closes when the client goes)."""

    def route(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("content-type", ctype)
        h.send_header("connection", "close")
        h.end_headers()
        h.close_connection = True
        try:
            h.wfile.write(head)
            while not h.server.stop.is_set():
                h.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    return route


def drip(body: bytes, every: float) -> Route:
    """`body` a byte at a time, one every `every` seconds."""

    def route(h: _Handler) -> None:
        h.send_response(200)
        h.send_header("content-type", "application/pdf")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        try:
            for i in range(len(body)):
                h.wfile.write(body[i : i + 1])
                h.wfile.flush()
                if h.server.stop.wait(every):
                    return
        except OSError:
            pass

    return route


def hang(until: threading.Event) -> Route:
    """Nothing at all until `until` is set (or the server stops), then a PNG."""

    def route(h: _Handler) -> None:
        while not until.wait(0.05):
            if h.server.stop.is_set():
                return
        h.reply(200, png(10, 10), "image/png")

    return route


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: h.reply(status, b"", "text/plain", {"location": location})


def image_body(url: str, model: str = "gpt-4o") -> dict[str, Any]:
    content = [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": url}]
    return {"model": model, "input": [{"role": "user", "content": content}]}


def file_body(**part: str) -> dict[str, Any]:
    content = [{"type": "input_text", "text": "summarize"}, {"type": "input_file", "filename": "a.pdf", **part}]
    return {"model": "gpt-4o", "input": [{"role": "user", "content": content}]}


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def fetch_error(fetcher: Fetcher, body: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        counter.count(body, resolver=fetcher)
    return info.value


# ------------------------------------------------------------------ exact counts


@pytest.mark.parametrize("ranges", [False, True], ids=["no-range", "range"])
@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4.1-mini"])
def test_a_fetched_image_counts_as_its_data_url(
    server: _Server, fetcher: Fetcher, name: str, ranges: bool, model: str
) -> None:
    data, ctype = IMAGES[name]
    server.routes["/img"] = static(data, ctype, ranges=ranges)
    fetched = counter.count(image_body(server.url("/img"), model), resolver=fetcher)
    inline = counter.count(image_body(data_url(data, ctype), model))
    assert (fetched.input_tokens, fetched.estimated) == (inline.input_tokens, inline.estimated)
    assert server.seen[0][1]["range"] == "bytes=0-65535"
    if name == "jpeg-exif" and ranges:  # the first 64 KiB held no frame header: asked again, whole
        assert len(server.seen) == 2
        assert "range" not in server.seen[1][1]


def test_a_mislabelled_image_counts_by_its_bytes(server: _Server, fetcher: Fetcher) -> None:
    data = jpeg(500, 400)
    server.routes["/img"] = static(data, "application/octet-stream")
    fetched = counter.count(image_body(server.url("/img")), resolver=fetcher)
    assert fetched.input_tokens == counter.count(image_body(data_url(data, "image/jpeg"))).input_tokens


def test_a_fetched_pdf_counts_as_its_inline_bytes(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/a.pdf"] = static(PDF, "application/pdf")
    fetched = counter.count(file_body(file_url=server.url("/a.pdf")), resolver=fetcher)
    inline = counter.count(file_body(file_data=data_url(PDF, "application/pdf")))
    assert fetched.input_tokens == inline.input_tokens
    assert "range" not in server.seen[0][1]  # a file is read whole


def test_a_body_of_urls_counts_as_the_same_body_inline(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/a.png"] = static(IMAGES["png"][0], "image/png")
    server.routes["/b.webp"] = static(IMAGES["webp-vp8x"][0], "image/webp", ranges=True)
    server.routes["/c.pdf"] = static(PDF, "application/pdf")

    def body(a: str, b: str, file: dict[str, str]) -> dict[str, Any]:
        parts = [
            {"type": "input_image", "image_url": a, "detail": "low"},
            {"type": "input_image", "image_url": b, "detail": "high"},
            {"type": "input_file", "filename": "c.pdf", **file},
        ]
        return {"model": "gpt-4o", "instructions": "Be brief.", "input": [{"role": "user", "content": parts}]}

    fetched = counter.count(
        body(server.url("/a.png"), server.url("/b.webp"), {"file_url": server.url("/c.pdf")}), resolver=fetcher
    )
    inline = counter.count(
        body(
            data_url(IMAGES["png"][0], "image/png"),
            data_url(IMAGES["webp-vp8x"][0], "image/webp"),
            {"file_data": data_url(PDF, "application/pdf")},
        )
    )
    assert fetched.input_tokens == inline.input_tokens


def test_file_ids_are_not_answered(fetcher: Fetcher) -> None:
    assert fetcher.image(None, "file-abc") is None
    assert fetcher.file(None, "file-abc", "a.pdf") is None
    with pytest.raises(counter.UnresolvedError):
        counter.count(file_body(file_id="file-abc"), resolver=fetcher)


# ------------------------------------------------------------------ bounds


def test_an_endless_image_counts_from_its_header_quickly(server: _Server, fetcher: Fetcher) -> None:
    head = png(3000, 2000, pixels=False)[:33]
    server.routes["/endless.png"] = endless(head, "image/png")
    started = time.monotonic()
    fetched = counter.count(image_body(server.url("/endless.png")), resolver=fetcher)
    assert time.monotonic() - started < 10  # a generous bound: it reads one or two chunks
    assert fetched.input_tokens == counter.count(image_body(data_url(head, "image/png"))).input_tokens


def test_an_endless_image_without_a_size_stops_at_the_cap(server: _Server) -> None:
    server.routes["/endless.jpg"] = endless(b"\xff\xd8\xff\xe1\xff\xff", "image/jpeg")  # one huge segment after another
    with Fetcher(allow=ALLOW, max_image_bytes=256 * 1024, timeout=10) as f:
        err = fetch_error(f, image_body(server.url("/endless.jpg")))
    assert err.code == "invalid_image_format"


def test_an_endless_file_stops_at_the_cap(server: _Server) -> None:
    server.routes["/endless.pdf"] = endless(b"%PDF-1.4\n", "application/pdf")
    with Fetcher(allow=ALLOW, max_file_bytes=1024 * 1024, timeout=10) as f:
        err = fetch_error(f, file_body(file_url=server.url("/endless.pdf")))
    assert "larger than this counter's limit of 1048576 bytes" in err.message
    assert (err.param, err.code) == ("url", "invalid_value")


def test_a_declared_length_over_the_cap_is_not_read(server: _Server) -> None:
    server.routes["/big.pdf"] = static(PDF, "application/pdf")
    with Fetcher(allow=ALLOW, max_file_bytes=len(PDF) - 1) as f:
        assert "larger than" in fetch_error(f, file_body(file_url=server.url("/big.pdf"))).message


def test_a_slow_drip_ends_at_the_total_timeout(server: _Server) -> None:
    server.routes["/drip.pdf"] = drip(PDF, 0.1)  # a byte every 0.1 s: each read is quick, the whole is not
    with Fetcher(allow=ALLOW, timeout=1, read_timeout=2) as f:
        started = time.monotonic()
        err = fetch_error(f, file_body(file_url=server.url("/drip.pdf")))
        assert time.monotonic() - started < 10
    assert err.message == f"Timeout while downloading {server.url('/drip.pdf')}."


def test_a_silent_server_ends_at_the_read_timeout(server: _Server) -> None:
    server.routes["/hang.png"] = hang(threading.Event())
    with Fetcher(allow=ALLOW, timeout=10, read_timeout=0.5) as f:
        err = fetch_error(f, image_body(server.url("/hang.png")))
    assert err.message.startswith("Timeout while downloading")


def test_concurrent_fetches_are_capped(server: _Server) -> None:
    release = threading.Event()
    server.routes["/hang.png"] = hang(release)
    results: list[bytes | None] = []
    with Fetcher(allow=ALLOW, timeout=10, read_timeout=10, max_concurrency=1) as f:
        first = threading.Thread(target=lambda: results.append(f.image(server.url("/hang.png"), None)))
        first.start()
        try:
            while not server.seen:
                time.sleep(0.01)
            f.timeout = 0.3  # the second fetch waits for a slot this long; the first keeps its 10 s
            with pytest.raises(InvalidRequestError, match="more than 1 fetches at once"):
                f.image(server.url("/hang.png?second"), None)
        finally:
            release.set()
            first.join(10)
    assert server.paths() == ["/hang.png"]
    assert results
    assert results[0] is not None


def test_huge_response_headers_are_an_error(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/huge"] = lambda h: h.reply(200, png(5, 5), "image/png", {"x-junk": "a" * 200_000})
    err = fetch_error(fetcher, image_body(server.url("/huge")))
    assert err.message.startswith(f"Error while downloading {server.url('/huge')}.")


# ------------------------------------------------------------------ errors OpenAI's way


def test_an_http_error_status(server: _Server, fetcher: Fetcher) -> None:
    err = fetch_error(fetcher, image_body(server.url("/missing.png")))
    assert err.to_dict()["error"] == {
        "message": f"Error while downloading {server.url('/missing.png')}. HTTP status 404.",
        "type": "invalid_request_error",
        "param": "url",
        "code": "invalid_value",
    }


@pytest.mark.parametrize(
    ("body", "ctype"),
    [(b"<html><body>not an image</body></html>", "text/html"), (b"", "image/png"), (b"\x89PNG\r\n", "image/png")],
    ids=["html", "empty", "truncated"],
)
def test_not_an_image(server: _Server, fetcher: Fetcher, body: bytes, ctype: str) -> None:
    server.routes["/x"] = static(body, ctype, ranges=bool(body))
    err = fetch_error(fetcher, image_body(server.url("/x")))
    assert (err.code, err.param) == ("invalid_image_format", None)
    assert err.message.startswith("You uploaded an unsupported image.")
    assert server.url("/x") in err.message


def test_an_unreachable_port(fetcher: Fetcher) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        err = fetch_error(fetcher, image_body(f"http://127.0.0.1:{port}/a.png"))
    assert err.message.startswith(f"Error while downloading http://127.0.0.1:{port}/a.png.")
    assert (err.param, err.code) == ("url", "invalid_value")


# ------------------------------------------------------------------ redirects


def test_redirects_to_an_allowed_address_are_followed(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/img"] = static(IMAGES["gif"][0], "image/gif")
    server.routes["/r1"] = redirect("/r2", 301)
    server.routes["/r2"] = redirect(server.url("/img"), 307)
    fetched = counter.count(image_body(server.url("/r1")), resolver=fetcher)
    assert fetched.input_tokens == counter.count(image_body(data_url(IMAGES["gif"][0], "image/gif"))).input_tokens
    assert server.paths() == ["/r1", "/r2", "/img"]


def test_too_many_redirects(server: _Server, fetcher: Fetcher) -> None:
    for i in range(5):
        server.routes[f"/r{i}"] = redirect(f"/r{i + 1}")
    err = fetch_error(fetcher, image_body(server.url("/r0")))
    assert "More than 3 redirects" in err.message
    assert server.paths() == ["/r0", "/r1", "/r2", "/r3"]


@pytest.mark.parametrize(
    "target",
    ["http://10.0.0.1/a.png", "http://169.254.169.254/latest/meta-data/", "http://[::1]/", "file:///etc/passwd",
     "http://127.0.0.2/", "http://0xa9fea9fe/", "http://metadata.internal.test/"],
)  # fmt: skip
def test_a_redirect_is_checked_like_the_first_url(
    server: _Server, fetcher: Fetcher, target: str, no_other_connections: list[Any]
) -> None:
    server.routes["/r"] = redirect(target)
    err = fetch_error(fetcher, image_body(server.url("/r")))
    assert err.message.startswith(f"Error while downloading {server.url('/r')}.")
    assert "Refused" in err.message, err.message
    assert [a[0] for a in no_other_connections] == ["127.0.0.1"]  # the first URL's server only


# ------------------------------------------------------------------ refusals, before any connection


@pytest.fixture
def no_other_connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Fails any connection beyond 127.0.0.1 (the admitted test server); stubs DNS for *.test names."""
    attempts: list[Any] = []
    real_connect = socket.create_connection
    real_resolve = socket.getaddrinfo
    stub = {
        "metadata.internal.test": ["169.254.169.254"],
        "private.test": ["10.1.2.3"],
        "mixed.test": ["93.184.215.14", "192.168.0.10"],
        "mapped.test": ["::ffff:127.0.0.1"],
    }

    def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        attempts.append(address)
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a connection to {address} was attempted")
        return real_connect(address, *args, **kwargs)

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in stub:
            return [
                (socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in stub[host]
            ]
        return real_resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", connect)
    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return attempts


REFUSED = [
    # loopback, unspecified, private, shared, link-local and metadata, multicast, reserved, broadcast
    "http://127.0.0.1/a.png", "http://127.255.0.1/", "http://localhost/", "http://[::1]/", "http://0.0.0.0/",
    "http://[::]/", "http://10.1.2.3/", "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.1.1/",
    "http://[fd12:3456::1]/", "http://100.64.0.1/", "http://169.254.169.254/latest/meta-data/",
    "http://[fd00:ec2::254]/", "http://100.100.100.200/", "http://[fe80::1]/", "http://224.0.0.1/",
    "http://[ff02::1]/", "http://240.0.0.1/", "http://255.255.255.255/", "http://192.0.2.1/", "http://198.18.0.1/",
    # IPv4 inside IPv6: mapped, NAT64, 6to4, compatible
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a00:1]/", "http://[2002:a9fe:a9fe::]/", "http://[::10.0.0.1]/",
    # odd IPv4 spellings: one decimal number, hex, octal parts, short forms
    "http://2130706433/", "http://0x7f000001/", "http://017700000001/", "http://0177.0.0.1/", "http://127.1/",
    "http://0x7f.1/", "http://0/", "http://3232235777/",
    # names that resolve to refused addresses (stubbed DNS), one of several addresses refused
    "http://metadata.internal.test/", "http://private.test/", "http://mixed.test/", "http://mapped.test/",
    # other schemes, and no host
    "ftp://example.com/a.png", "file:///etc/passwd", "gopher://127.0.0.1:70/", "javascript:alert(1)",
    "http:///a.png", "https://user@/",
]  # fmt: skip


@pytest.mark.parametrize("url", REFUSED)
def test_refused_before_any_connection(url: str, no_other_connections: list[Any]) -> None:
    with Fetcher() as f:
        err = fetch_error(f, image_body(url))
        err_file = fetch_error(f, file_body(file_url=url))
    assert err.message.startswith(f"Error while downloading {url}.")
    assert err_file.message == err.message
    assert (err.param, err.code) == ("url", "invalid_value")
    assert no_other_connections == []


def test_refusals_say_why(no_other_connections: list[Any]) -> None:
    with Fetcher() as f:
        said = {url: fetch_error(f, image_body(url)).message for url in REFUSED}
    assert "127.0.0.1 is a loopback address" in said["http://127.0.0.1/a.png"]
    assert "169.254.169.254 is a cloud metadata address" in said["http://169.254.169.254/latest/meta-data/"]
    assert (
        "169.254.169.254 (from 'metadata.internal.test') is a cloud metadata address"
        in (said["http://metadata.internal.test/"])
    )
    assert "a private address" in said["http://10.1.2.3/"]
    assert "a loopback address (127.0.0.1) inside an IPv6 address" in said["http://[::ffff:127.0.0.1]/"]
    assert "192.168.0.10" in said["http://mixed.test/"]
    assert "only http and https" in said["ftp://example.com/a.png"]
    assert "--fetch-allow" in said["http://10.1.2.3/"]


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "2a00:1450:4001::200e"]
)
def test_public_addresses_are_admitted(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


def test_allow_admits_networks_and_host_names(server: _Server) -> None:
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    port = server.server_port
    for allow, url in [
        (["127.0.0.0/8"], f"http://127.0.0.1:{port}/img"),
        (["localhost"], f"http://localhost:{port}/img"),
        (["LOCALHOST."], f"http://localhost:{port}/img"),
    ]:
        with Fetcher(allow=allow) as f:
            data = f.image(url, None)
        assert data is not None
        assert data.startswith(b"\x89PNG")
    with Fetcher(allow=["10.0.0.0/8", "example.com"]) as f, pytest.raises(InvalidRequestError, match="loopback"):
        f.image(f"http://127.0.0.1:{port}/img", None)


def test_the_connection_goes_to_the_address_that_was_checked(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """DNS is asked once per connection, by the fetcher: a second answer (a rebinding attacker's) is
    never used; the request keeps the host name in its Host header."""
    answers = iter(["127.0.0.1", "10.9.9.9", "10.9.9.9"])
    asked: list[str] = []
    connected: list[Any] = []
    real_connect, real_resolve = socket.create_connection, socket.getaddrinfo

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "127.0.0.1":  # socket.create_connection's own look-up of the literal: no DNS
            return real_resolve(host, port, *args, **kwargs)
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    def connect(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
        connected.append(address)
        return real_connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(socket, "create_connection", connect)
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    with Fetcher(allow=["127.0.0.1"]) as f:
        assert f.image(f"http://images.rebind.test:{server.server_port}/img", None)
    assert asked == ["images.rebind.test"]
    assert connected == [("127.0.0.1", server.server_port)]
    assert server.seen[0][1]["host"] == f"images.rebind.test:{server.server_port}"


def test_environment_proxies_are_not_used(server: _Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://10.0.0.1:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.0.0.1:3128")
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    with Fetcher(allow=ALLOW) as f:
        assert f.image(server.url("/img"), None)


# ------------------------------------------------------------------ the cache


def test_the_same_image_is_fetched_once(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    body = image_body(server.url("/img"))
    first = counter.count(body, resolver=fetcher)
    for _ in range(3):
        assert counter.count(body, resolver=fetcher).input_tokens == first.input_tokens
    assert server.paths() == ["/img"]
    assert fetcher.cache_info()["entries"] == 1


def test_a_stale_entry_is_revalidated(server: _Server, fetcher: Fetcher) -> None:
    data = IMAGES["jpeg"][0]

    def route(h: _Handler) -> None:
        if h.headers.get("if-none-match") == '"v1"':
            h.send_response(304)
            h.send_header("cache-control", "max-age=0")
            h.send_header("content-length", "0")
            h.end_headers()
        else:
            extra = {"etag": '"v1"', "last-modified": "Tue, 01 Dec 2026 00:00:00 GMT", "cache-control": "max-age=0"}
            h.reply(200, data, "image/jpeg", extra)

    server.routes["/img"] = route
    body = image_body(server.url("/img"))
    first = counter.count(body, resolver=fetcher).input_tokens
    assert counter.count(body, resolver=fetcher).input_tokens == first
    assert len(server.seen) == 2
    assert server.seen[1][1]["if-none-match"] == '"v1"'
    assert server.seen[1][1]["if-modified-since"] == "Tue, 01 Dec 2026 00:00:00 GMT"


def test_no_store_is_not_cached(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/img"] = static(IMAGES["gif"][0], "image/gif", headers={"cache-control": "no-store"})
    for _ in range(2):
        fetcher.image(server.url("/img"), None)
    assert len(server.seen) == 2
    assert fetcher.cache_info()["entries"] == 0


def test_the_cache_is_bounded(server: _Server) -> None:
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    with Fetcher(allow=ALLOW, cache_entries=2) as f:
        for i in range(5):
            f.image(server.url(f"/img?{i}"), None)
        assert f.cache_info()["entries"] == 2


# ------------------------------------------------------------------ the command


def test_the_command_fetches_with_fetch(server: _Server, tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/img"] = static(IMAGES["png"][0], "image/png")
    path = tmp_path / "body.json"
    path.write_text(json.dumps(image_body(server.url("/img"))))
    assert main(["count", "--fetch", "--fetch-allow", "127.0.0.1", str(path)]) == 0
    out = json.loads(capsys.readouterr().out)
    expected = counter.count(image_body(data_url(IMAGES["png"][0], "image/png")))
    assert out == {"object": "response.input_tokens", "input_tokens": expected.input_tokens, "estimated": False}
    assert main(["count", "--fetch", str(path)]) == 1  # loopback is not admitted by default
    error = json.loads(capsys.readouterr().err)["error"]
    assert "is a loopback address" in error["message"]
    assert error["param"] == "url"
    assert server.paths() == ["/img"]


def test_the_command_without_httpx2(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "httpx2", None)
    path = tmp_path / "body.json"
    path.write_text('{"model": "gpt-4o", "input": "hi"}')
    with pytest.raises(SystemExit) as info:
        main(["count", "--fetch", str(path)])
    assert info.value.code == 2
    assert "pip install '.[fetch]'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["count", "--fetch-allow", "10.0.0.0/8", str(path)])
    assert "--fetch-allow goes with --fetch" in capsys.readouterr().err


def test_with_urls_asks_the_fetcher_for_urls_and_the_store_for_the_rest(server: _Server, fetcher: Fetcher) -> None:
    server.routes["/a.png"] = static(IMAGES["png"][0], "image/png")

    class Store(counter.Resolver):
        def image(self, url: str | None, file_id: str | None) -> bytes | None:
            assert url is None
            return IMAGES["gif"][0] if file_id == "file-gif" else None

    def body(first: dict[str, str]) -> dict[str, Any]:
        parts = [{"type": "input_image", **first}, {"type": "input_image", "file_id": "file-gif"}]
        return {"model": "gpt-4o", "input": [{"role": "user", "content": parts}]}

    store = Store()
    both = with_urls(store, fetcher)
    fetched = counter.count(body({"image_url": server.url("/a.png")}), resolver=both)
    inline = counter.count(body({"image_url": data_url(IMAGES["png"][0], "image/png")}), resolver=Store())
    assert fetched.input_tokens == inline.input_tokens
    assert with_urls(None, fetcher) is fetcher
    assert with_urls(store, None) is store
