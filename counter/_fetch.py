"""`counter.Fetcher`: an opt-in `Resolver` that fetches remote images and files over HTTP(S), safely.

The counter itself never touches the network (docs/architecture.md); this resolver is what a caller
passes (`count(body, resolver=counter.Fetcher())`, `input-tokens count --fetch`, `serve --fetch`)
to count bodies whose images and files are URLs exactly. The safety model, the refusal matrix, the
errors and the limits are in docs/fetch.md; in short:

- **Addresses**: http and https only; the host is resolved here (`socket.getaddrinfo`), every
  address is checked, and the connection goes to a checked address (the resolution and the connect
  happen in one place, the network backend below, so nothing can re-resolve in between: no DNS
  rebinding). The URL keeps its host name, so the Host header, TLS SNI and certificate checks are
  the host's. Loopback, private, link-local (cloud metadata), shared, multicast, reserved and
  unspecified addresses are refused, IPv4 and IPv6, IPv4 inside IPv6 too, unless `allow` admits the
  host or the address. Redirects are followed here (at most `max_redirects`), each one like the
  first URL. Proxies from the environment are never used (they would connect elsewhere).
- **Bounds**: connect, read and total timeouts; byte caps (an image is read only until its header
  gives the size, with a Range request first; a file whole, up to `max_file_bytes`); a cap on
  concurrent fetches; a bounded cache by URL that revalidates with ETag/Last-Modified.

httpx2 (httpx's maintained successor, which the openai SDK uses) is imported when a Fetcher is made:
`pip install 'input-tokens[fetch]'`.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from counter._errors import InputTokensError, InvalidRequestError
from counter._images import ImageError, ImageTruncatedError, image_size_from_bytes
from counter._lru import BoundedLRU
from counter._resolve import Resolver

if TYPE_CHECKING:
    import httpx2

__all__ = ["FetchUnavailableError", "Fetcher", "RefusedAddressError", "refusal", "with_urls"]

MiB: Final = 1024 * 1024
#: The first request for an image asks for this many bytes (`Range`): every PNG, GIF and WebP header
#: and nearly every JPEG's frame header lie within it.
IMAGE_RANGE: Final = 65_536
#: Without Cache-Control, a cached body is used as is for this long, then revalidated.
DEFAULT_FRESH_SECONDS: Final = 300.0
_IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_Net = ipaddress.IPv4Network | ipaddress.IPv6Network

# Named so that a refusal says why; `is_global` (below) catches the rest of IANA's special ranges.
_NAMED_RANGES: Final[tuple[tuple[_Net, str], ...]] = tuple(
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("169.254.169.254/32", "a cloud metadata address"),
        ("fd00:ec2::254/128", "a cloud metadata address"),
        ("100.100.100.200/32", "a cloud metadata address"),
        ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("fc00::/7", "a private address"),
        ("100.64.0.0/10", "a shared (carrier-grade NAT) address"),
        ("169.254.0.0/16", "a link-local address"),
        ("fe80::/10", "a link-local address"),
        ("224.0.0.0/4", "a multicast address"),
        ("ff00::/8", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
# IPv6 ranges that carry an IPv4 address, which is checked too: IPv4-mapped (::ffff:0:0/96) is
# Python's `ipv4_mapped`; 6to4 (2002::/16) `sixtofour`; NAT64 (64:ff9b::/96) and IPv4-compatible
# (::/96) by hand.
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_COMPAT: Final = ipaddress.ip_network("::/96")


class FetchUnavailableError(InputTokensError):
    """Fetching needs the optional dependency httpx2: `pip install 'input-tokens[fetch]'`."""

    code = "fetch_unavailable"

    def __init__(self) -> None:
        self.message = (
            "Fetching remote images and files needs the fetch extra (httpx2): from a clone of input-tokens, "
            "pip install '.[fetch]'"
        )
        super().__init__(self.message)


class RefusedAddressError(Exception):
    """A host resolved to an address the fetcher does not connect to (raised before any connection)."""


def refusal(ip: _IP) -> str | None:
    """Why this address is refused (a phrase), or None for a public unicast address."""
    embedded: ipaddress.IPv4Address | None = None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and (ip in _NAT64 or (ip in _COMPAT and int(ip) > 1)):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            why = refusal(embedded)
            return None if why is None else f"{why} ({embedded}) inside an IPv6 address"
    for net, why in _NAMED_RANGES:
        if ip.version == net.version and ip in net:
            return why
    if ip.is_multicast:
        return "a multicast address"
    if not ip.is_global:
        return "a reserved address"
    return None


class _Policy:
    """Which hosts and addresses may be connected to: public ones, and those `allow` names."""

    def __init__(self, allow: Iterable[str]) -> None:
        self.hosts: set[str] = set()
        self.nets: list[_Net] = []
        for entry in allow:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.nets.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                self.hosts.add(entry.lower().rstrip("."))

    def addresses(self, host: str, port: int) -> list[str]:
        """Every address of `host`, each checked; raises `RefusedAddressError` if any is refused."""
        name = host.lower().rstrip(".")
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise OSError(f"cannot resolve {host!r}: {exc}") from None
        out: list[str] = []
        for family, _, _, _, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                raise RefusedAddressError(f"{host!r} resolves to a non-IP address")
            addr = str(sockaddr[0])
            ip = ipaddress.ip_address(addr)
            why = None if name in self.hosts else refusal(ip)
            if why is not None and not any(ip.version == n.version and ip in n for n in self.nets):
                shown = addr if addr == host.strip("[]") else f"{addr} (from {host!r})"
                raise RefusedAddressError(f"{shown} is {why}; --fetch-allow (allow=) admits a host or network")
            if addr not in out:
                out.append(addr)
        if not out:
            raise OSError(f"cannot resolve {host!r}: no address")
        return out


class _FetchError(Exception):
    def __init__(self, message: str, code: str = "invalid_value", param: str | None = "url") -> None:
        super().__init__(message)
        self.message, self.code, self.param = message, code, param


@dataclass(slots=True)
class _Entry:
    data: bytes
    etag: str | None
    last_modified: str | None
    fresh_until: float


@dataclass(slots=True)
class _Got:
    """One response's outcome: a body, or 'not modified', or 'needs the whole image' (a 206 too short)."""

    data: bytes | None
    headers: Any = None
    not_modified: bool = False
    short_range: bool = False


class _WithUrls(Resolver):
    """Remote images and files from `urls`; everything else (stored state, uploads) from `base`."""

    def __init__(self, base: Resolver, urls: Resolver) -> None:
        self.base, self.urls = base, urls

    def items_before(self, previous_response_id: str | None, conversation_id: str | None) -> Any:
        return self.base.items_before(previous_response_id, conversation_id)

    def item(self, item_id: str) -> Any:
        return self.base.item(item_id)

    def reasoning_tokens(self, item_id: str) -> int | None:
        return self.base.reasoning_tokens(item_id)

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        return (self.urls if url is not None else self.base).image(url, file_id)

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        return (self.urls if url is not None else self.base).file(url, file_id, filename)


def with_urls(base: Resolver | None, urls: Resolver | None) -> Resolver | None:
    """One resolver: `urls` (a Fetcher) for remote images and files, `base` (a state store) for the rest."""
    if urls is None or base is None:
        return base if urls is None else urls
    return _WithUrls(base, urls)


class Fetcher(Resolver):
    """A `Resolver` that fetches `image_url` and `file_url` over http(s), safely (docs/fetch.md).

    Only public addresses are fetched; `allow` admits more: host names (exactly) and IP addresses or
    networks (`"10.0.0.0/8"`, `"127.0.0.1"`). Every fetch is bounded: `connect_timeout` and
    `read_timeout` (seconds, per connection and per read), `timeout` (seconds, a whole fetch with its
    redirects), `max_image_bytes` (an image's header must be found within it), `max_file_bytes` (a
    file's whole size), `max_redirects`, and `max_concurrency` fetches at once (the others wait, up
    to `timeout`). Bodies are cached by URL, up to `cache_entries` and `cache_bytes`, and revalidated
    (ETag, Last-Modified) when stale (Cache-Control max-age, else after 5 minutes).

    A URL that cannot be fetched, or is refused, raises `counter.InvalidRequestError` with OpenAI's
    error for it ("Error while downloading ..." with the reason); an image URL whose content is not
    an image, OpenAI's `invalid_image_format`. `file_id`s are not answered (None). Use it as a context
    manager, or `close()` it, to close its connections.
    """

    def __init__(
        self,
        *,
        allow: Iterable[str] = (),
        timeout: float = 20.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        max_image_bytes: int = 4 * MiB,
        max_file_bytes: int = 32 * MiB,
        max_redirects: int = 3,
        max_concurrency: int = 8,
        cache_entries: int = 256,
        cache_bytes: int = 128 * MiB,
    ) -> None:
        try:
            import httpcore2
            import httpx2
        except ImportError:
            raise FetchUnavailableError() from None
        if min(timeout, connect_timeout, read_timeout) <= 0 or min(max_image_bytes, max_file_bytes) < 64:
            raise ValueError("timeouts must be > 0 and byte caps >= 64")
        if max_redirects < 0 or max_concurrency < 1 or cache_entries < 0 or cache_bytes < 0:
            raise ValueError("max_redirects, cache_entries, cache_bytes must be >= 0 and max_concurrency >= 1")
        self._policy = _Policy([allow] if isinstance(allow, str) else allow)
        self.timeout = timeout
        self._connect_timeout, self._read_timeout = connect_timeout, read_timeout
        self.max_image_bytes, self.max_file_bytes = max_image_bytes, max_file_bytes
        self.max_redirects = max_redirects
        self.max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._cache: BoundedLRU[tuple[str, str], _Entry] = BoundedLRU(lambda k: len(k[1]), cache_bytes, cache_entries)
        self._httpx = httpx2
        transport = httpx2.HTTPTransport(trust_env=False)
        # The one private attribute touched: httpx2's transport takes no network backend, so its
        # connection pool is replaced by the same pool with ours (tests/test_fetch.py pins it).
        transport._pool.close()
        transport._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=max_concurrency * 2,
            max_keepalive_connections=max_concurrency,
            keepalive_expiry=5.0,
            network_backend=_checked_backend(httpcore2, self._policy),
        )
        self._client = httpx2.Client(
            transport=transport,
            trust_env=False,
            follow_redirects=False,
            timeout=httpx2.Timeout(read_timeout, connect=connect_timeout, pool=timeout),
            headers={"user-agent": "input-tokens-fetcher", "accept-encoding": "identity"},
        )

    # ------------------------------------------------------------------ Resolver

    def image(self, url: str | None, file_id: str | None) -> bytes | None:
        """The first bytes of the image at `url`, enough for its size (None for a `file_id`)."""
        if url is None:
            return None
        return self._get("image", url)

    def file(self, url: str | None, file_id: str | None, filename: str | None) -> bytes | None:
        """The whole file at `url`, up to `max_file_bytes` (None for a `file_id`)."""
        if url is None:
            return None
        return self._get("file", url)

    def close(self) -> None:
        """Close the pooled connections."""
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cache_info(self) -> dict[str, int]:
        """The URL cache's entries, bytes, bounds, hits and misses."""
        return self._cache.info()

    # ------------------------------------------------------------------ fetching

    def _get(self, kind: str, url: str) -> bytes:
        try:
            return self._fetch(kind, url)
        except _FetchError as exc:
            raise InvalidRequestError(exc.message, param=exc.param, code=exc.code) from None

    def _fetch(self, kind: str, url: str) -> bytes:
        _check_url(url)
        key = (kind, url)
        entry = self._cache.get(key)
        now = time.monotonic()
        if entry is not None and now < entry.fresh_until:
            return entry.data
        deadline = now + self.timeout
        if not self._slots.acquire(timeout=self.timeout):
            raise _FetchError(f"Timeout while downloading {url}. (more than {self.max_concurrency} fetches at once)")
        try:
            got = self._download(kind, url, entry, deadline)
            if got.short_range:  # the header lies beyond the first range: the whole image, then
                got = self._download(kind, url, None, deadline, use_range=False)
        finally:
            self._slots.release()
        fresh = _fresh_until(got.headers, time.monotonic())
        if got.not_modified and entry is not None:
            if fresh is None:
                self._cache.pop(key)
            else:
                entry.fresh_until = fresh
            return entry.data
        assert got.data is not None
        if fresh is None:
            self._cache.pop(key)
        else:
            etag, modified = got.headers.get("etag"), got.headers.get("last-modified")
            self._cache.set(key, _Entry(got.data, etag, modified, fresh), len(got.data) + len(url))
        return got.data

    def _download(self, kind: str, url: str, entry: _Entry | None, deadline: float, use_range: bool = True) -> _Got:
        httpx2 = self._httpx
        headers: dict[str, str] = {}
        if kind == "image" and use_range:
            headers["range"] = f"bytes=0-{IMAGE_RANGE - 1}"
        if entry is not None:
            if entry.etag:
                headers["if-none-match"] = entry.etag
            if entry.last_modified:
                headers["if-modified-since"] = entry.last_modified
        current = url
        for hop in range(self.max_redirects + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise _FetchError(f"Timeout while downloading {url}.")
            try:
                read, connect = min(self._read_timeout, left), min(self._connect_timeout, left)
                bounds = httpx2.Timeout(read, connect=connect, pool=left)
                request = self._client.build_request("GET", current, headers=headers, timeout=bounds)
                response = self._client.send(request, stream=True)
            except RefusedAddressError as exc:
                raise _FetchError(f"Error while downloading {url}. Refused: {_via(current, url)}{exc}") from None
            except httpx2.TimeoutException:
                raise _FetchError(f"Timeout while downloading {url}.") from None
            except (httpx2.HTTPError, httpx2.InvalidURL, OSError, ValueError) as exc:
                raise _FetchError(f"Error while downloading {url}. {_via(current, url)}{_reason(exc)}") from None
            try:
                status = response.status_code
                if status in (301, 302, 303, 307, 308) and "location" in response.headers:
                    if hop == self.max_redirects:
                        raise _FetchError(f"Error while downloading {url}. More than {self.max_redirects} redirects.")
                    current = str(response.url.join(response.headers["location"]))
                    why = _url_refusal(current)
                    if why is not None:
                        raise _FetchError(f"Error while downloading {url}. Refused: {_via(current, url)}{why}")
                    continue
                if status == 304 and entry is not None:
                    return _Got(None, response.headers, not_modified=True)
                if status == 416 and kind == "image" and use_range:
                    return _Got(None, short_range=True)  # an empty file, or a server that dislikes ranges
                if status not in (200, 206):
                    raise _FetchError(f"Error while downloading {url}. {_via(current, url)}HTTP status {status}.")
                if kind == "image":
                    return self._read_image(url, response, deadline)
                return _Got(self._read_file(url, response, deadline), response.headers)
            except httpx2.TimeoutException:
                raise _FetchError(f"Timeout while downloading {url}.") from None
            except httpx2.HTTPError as exc:
                raise _FetchError(f"Error while downloading {url}. {_reason(exc)}") from None
            finally:
                response.close()
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _read_image(self, url: str, response: httpx2.Response, deadline: float) -> _Got:
        """Read until the header gives the size, never more than `max_image_bytes`."""
        buf = bytearray()
        for chunk in _chunks(response, url, deadline):
            buf += chunk
            if len(buf) >= 32 or not chunk:
                try:
                    image_size_from_bytes(bytes(buf))
                except ImageTruncatedError:
                    pass
                except ImageError:
                    raise _unsupported_image(url) from None
                else:
                    return _Got(bytes(buf), response.headers)
            if len(buf) >= self.max_image_bytes:
                raise _FetchError(
                    f"You uploaded an unsupported image. Please make sure your image is valid. ({url}: no image "
                    f"size within its first {self.max_image_bytes} bytes)",
                    code="invalid_image_format",
                    param=None,
                )
        try:
            image_size_from_bytes(bytes(buf))
        except ImageTruncatedError:
            if response.status_code == 206:
                return _Got(None, short_range=True)
            raise _unsupported_image(url) from None
        except ImageError:
            raise _unsupported_image(url) from None
        return _Got(bytes(buf), response.headers)

    def _read_file(self, url: str, response: httpx2.Response, deadline: float) -> bytes:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_file_bytes:
            raise _too_large(url, self.max_file_bytes)
        buf = bytearray()
        for chunk in _chunks(response, url, deadline):
            buf += chunk
            if len(buf) > self.max_file_bytes:
                raise _too_large(url, self.max_file_bytes)
        return bytes(buf)


def _chunks(response: httpx2.Response, url: str, deadline: float) -> Iterator[bytes]:
    """The body's chunks as they arrive, until `deadline` (checked between reads: a read itself is
    bounded by the read timeout)."""
    for chunk in response.iter_bytes():
        if time.monotonic() > deadline:
            raise _FetchError(f"Timeout while downloading {url}.")
        yield chunk


def _check_url(url: str) -> None:
    why = _url_refusal(url)
    if why is not None:
        raise _FetchError(f"Error while downloading {url}. Refused: {why}")


def _url_refusal(url: str) -> str | None:
    """Why this URL is not fetched (not http(s), no host), or None; addresses are checked when connecting."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        return f"not a valid URL ({exc})."
    if parts.scheme.lower() not in ("http", "https"):
        return "only http and https URLs are fetched."
    if not parts.hostname:
        return "not a valid URL (no host)."
    return None


def _via(current: str, url: str) -> str:
    return "" if current == url else f"(redirected to {current}) "


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if text.endswith(".") else f"{text}."


def _unsupported_image(url: str) -> _FetchError:
    return _FetchError(
        f"You uploaded an unsupported image. Please make sure your image is valid. ({url} is not a PNG, JPEG, GIF "
        "or WebP image)",
        code="invalid_image_format",
        param=None,
    )


def _too_large(url: str, cap: int) -> _FetchError:
    return _FetchError(f"Error while downloading {url}. The file is larger than this counter's limit of {cap} bytes.")


def _fresh_until(headers: Any, now: float) -> float | None:
    """Until when a response may be reused without asking again; None: not to be stored."""
    if headers is None:
        return None
    directives = {d.strip().split("=", 1)[0].lower(): d.strip() for d in headers.get("cache-control", "").split(",")}
    if "no-store" in directives:
        return None
    if "no-cache" in directives:
        return now
    age = directives.get("max-age", "")
    value = age.split("=", 1)[1].strip().strip('"') if "=" in age else ""
    return now + min(int(value), 86_400) if value.isdigit() else now + DEFAULT_FRESH_SECONDS


def _checked_backend(httpcore2: Any, policy: _Policy) -> Any:
    """An httpcore2 network backend that resolves the host itself, checks every address, and
    connects to a checked one: the check and the connection cannot see different DNS answers."""

    class _CheckedBackend(httpcore2.SyncBackend):  # type: ignore[misc]
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Any = None,
        ) -> Any:
            error: Exception | None = None
            for addr in policy.addresses(host, port):
                try:
                    return super().connect_tcp(addr, port, timeout, local_address, socket_options)
                except httpcore2.ConnectError as exc:
                    error = exc
            assert error is not None
            raise error

        def connect_unix_socket(self, *args: Any, **kwargs: Any) -> Any:
            raise RefusedAddressError("unix sockets are not fetched from")

    return _CheckedBackend()
