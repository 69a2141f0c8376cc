"""web_fetch against SSRF (loopback, private, metadata, rebinding, redirects) and web_search."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from functools import partial

import pytest
import trio

from lynkr.workspace import resolve_host
from lynkr.workspace._guard import address_problem
from tests.lynkr.workspace.conftest import decisions

PAGE = (b"<html><head><title>Hello page</title><style>p{}</style></head><body>"
        b"<h1>Title</h1><p>First &amp; second.</p><script>alert(1)</script>"
        b"<ul><li>one</li><li>two</li></ul></body></html>")


@dataclass
class Server:
    port: int = 0
    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)


def _response(status: str, body: bytes, ctype: str = "text/html", extra: str = "") -> bytes:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n{extra}\r\n")
    return head.encode() + body


def _route(server: Server, path: str) -> bytes:
    base = f"http://127.0.0.1:{server.port}"
    routes = {
        "/page": _response("200 OK", PAGE),
        "/to-loopback": _response("302 Found", b"", extra=f"Location: {base}/page\r\n"),
        "/to-rebind": _response(
            "302 Found", b"", extra=f"Location: http://rebind.test:{server.port}/page\r\n"),
        "/to-self": _response("302 Found", b"", extra="Location: /page\r\n"),
        "/loop": _response("302 Found", b"", extra="Location: /loop\r\n"),
        "/big": _response("200 OK", b"x" * 50_000, "text/plain"),
        "/image": _response("200 OK", b"\x89PNG\x00\x00", "image/png"),
        "/odd-charset": _response("200 OK", "héllo".encode(), "text/plain; charset=nope-42"),
    }
    if path.startswith("/search"):
        return _response("200 OK", json.dumps({"results": [
            {"title": "Trio", "url": "https://trio.readthedocs.io", "content": "async"}]}
        ).encode(), "application/json")
    return routes.get(path, _response("404 Not Found", b"missing", "text/plain"))


@pytest.fixture
async def server(nursery):
    state = Server()

    async def handle(stream):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some(4096)
            if not chunk:
                return
            data += chunk
        lines = data.decode().split("\r\n")
        path = lines[0].split(" ")[1]
        state.paths.append(path)
        state.hosts += [ln.split(":", 1)[1].strip() for ln in lines
                        if ln.lower().startswith("host:")]
        if path == "/slow":
            await trio.sleep(5)
        await stream.send_all(_route(state, path))
        await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
    state.port = listeners[0].socket.getsockname()[1]
    return state


async def fake_dns(host: str, port: int) -> list[str]:
    """allowed.test and rebind.test live on loopback; everything else is real DNS."""
    if host in ("allowed.test", "rebind.test"):
        return ["127.0.0.1"]
    if host == "mixed.test":
        return ["93.184.216.34", "10.0.0.5"]
    return await resolve_host(host, port)


@pytest.fixture
def web(make_runner):
    def build(**overrides):
        settings = {"web_allowed_hosts": ("*",), **overrides}
        return make_runner(resolve=fake_dns, **settings)

    return build


@pytest.mark.parametrize(("url", "why"), [
    ("http://127.0.0.1/", "loopback"),
    ("http://localhost/", "loopback"),
    ("http://[::1]/", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "metadata"),
    ("http://10.0.0.1/", "private"),
    ("http://0.0.0.0/", "unspecified"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://rebind.test/", "loopback"),
    ("http://mixed.test/", "private"),
])
async def test_internal_addresses_are_refused_and_audited(web, session, store, url, why):
    """Loopback, private, link-local/metadata and names resolving there are all refused."""
    result = await web().call("web_fetch", {"url": url}, session_id=session)
    assert not result.ok
    assert why in result.content["error"]
    assert "WEB_FETCH_ALLOW_PRIVATE_HOSTS=" in result.content["error"]
    last = decisions(store, session)[-1]
    assert (last.rule, last.decision) == ("web.address.public", "deny")
    assert last.fields["host"]


async def test_host_not_on_the_allow_list_is_refused(make_runner, session, store):
    """Without an allow-list entry the host is refused before any DNS lookup."""
    result = await make_runner(web_allowed_hosts=("docs.example.org",)).call(
        "web_fetch", {"url": "https://example.com/"}, session_id=session)
    assert not result.ok
    assert "WEB_SEARCH_ALLOWED_HOSTS" in result.content["error"]
    assert decisions(store, session)[0].fields["host"] == "example.com"


async def test_lifted_host_on_loopback_is_fetched_as_text(web, session, server):
    """With the explicit lift, an allowed host served on 127.0.0.1 is fetched; HTML → text."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/page"}, session_id=session)
    assert result.ok, result.content
    assert result.content["title"] == "Hello page"
    assert "First & second." in result.content["text"]
    assert "- one" in result.content["text"]
    assert "alert" not in result.content["text"]
    assert "p{}" not in result.content["text"]
    assert server.hosts == [f"allowed.test:{server.port}"]  # Host kept, address pinned


async def test_redirect_to_loopback_is_refused(web, session, store, server):
    """An allowed host redirecting to 127.0.0.1 is refused at the redirect."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/to-loopback"},
        session_id=session)
    assert not result.ok
    assert server.paths == ["/to-loopback"]  # the loopback target was never requested
    assert decisions(store, session)[-1].decision == "deny"


async def test_redirect_to_a_name_resolving_to_loopback_is_refused(web, session, server):
    """A redirect to a host name that resolves to loopback is refused too."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/to-rebind"},
        session_id=session)
    assert not result.ok
    assert "rebind.test resolves to 127.0.0.1" in result.content["error"]


async def test_redirect_within_the_lifted_host_is_followed(web, session, server):
    """A relative redirect on the same allowed host is followed and re-checked."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/to-self"}, session_id=session)
    assert result.ok
    assert server.paths == ["/to-self", "/page"]


async def test_redirect_loop_stops_at_the_limit(web, session, server):
    """Redirects past WEB_FETCH_MAX_REDIRECTS end in a clear error."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",),
                       web_fetch_max_redirects=2).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/loop"}, session_id=session)
    assert not result.ok
    assert "WEB_FETCH_MAX_REDIRECTS" in result.content["error"]


async def test_body_is_cut_at_the_size_limit(web, session, server):
    """A body over WEB_FETCH_MAX_BYTES is truncated."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",),
                       web_fetch_max_bytes=1000).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/big"}, session_id=session)
    assert result.content["bytes"] == 1000
    assert result.content["truncated"] is True


async def test_binary_content_is_reported_not_dumped(web, session, server):
    """A non-text content type is reported without its bytes."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/image"}, session_id=session)
    assert result.content["binary"] is True
    assert "text" not in result.content


async def test_slow_server_hits_the_time_limit(web, session, server):
    """A server slower than WEB_FETCH_TIMEOUT_MS ends in a clear error."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",),
                       web_fetch_timeout_ms=200).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/slow"}, session_id=session)
    assert not result.ok
    assert "WEB_FETCH_TIMEOUT_MS" in result.content["error"]


async def test_non_http_scheme_is_refused(web, session):
    """file:// and friends are refused by the URL rule."""
    result = await web().call("web_fetch", {"url": "file:///etc/passwd"}, session_id=session)
    assert not result.ok
    assert "web.url.valid" in result.content["error"]


async def test_search_uses_the_searxng_json_api(make_runner, session, server):
    """web_search asks WEB_SEARCH_ENDPOINT/search?format=json and shapes the results."""
    runner = make_runner(web_search_endpoint=f"http://127.0.0.1:{server.port}")
    result = await runner.call("web_search", {"query": "trio nursery"}, session_id=session)
    assert result.ok, result.content
    assert result.content["results"][0]["url"] == "https://trio.readthedocs.io"
    assert server.paths[0].startswith("/search?q=trio+nursery&format=json")


async def test_search_without_endpoint_names_the_setting(make_runner, session):
    """No endpoint configured: a deny naming WEB_SEARCH_ENDPOINT."""
    result = await make_runner().call("web_search", {"query": "x"}, session_id=session)
    assert not result.ok
    assert "WEB_SEARCH_ENDPOINT" in result.content["error"]


@pytest.mark.parametrize(("ip", "public"), [
    ("8.8.8.8", True), ("2606:4700::1111", True), ("100.64.0.1", False),
    ("192.168.1.1", False), ("fe80::1", False), ("224.0.0.1", False),
    ("64:ff9b::7f00:1", False), ("fd00:ec2::254", False),
])
def test_address_classification(ip, public):
    """Only globally routable addresses pass."""
    assert (address_problem(ip) is None) is public


async def test_unknown_charset_falls_back_to_utf8(web, session, server):
    """A charset Python does not know is read as UTF-8 instead of failing."""
    result = await web(web_fetch_allow_private_hosts=("allowed.test",)).call(
        "web_fetch", {"url": f"http://allowed.test:{server.port}/odd-charset"},
        session_id=session)
    assert result.ok, result.content
    assert result.content["text"] == "héllo"


def _tls_files(tmp_path, name):
    """A throwaway CA and a server certificate for `name` signed by it (PEM files)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def cert(subject, issuer, key, signer, *, ca):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Lynkr test CA")])
    ca_cert = cert(ca_name, ca_name, ca_key, ca_key, ca=True)
    leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]), ca_name, key,
                ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return tmp_path / "ca.pem"


@pytest.fixture
async def tls_server(nursery, tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names secure.test."""
    import ssl

    ca = _tls_files(tmp_path, "secure.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")

    async def handle(stream):
        with trio.move_on_after(5), contextlib.suppress(trio.BrokenResourceError):
            # a client that rejects our certificate hangs up mid-handshake
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = await stream.receive_some(4096)
                if not chunk:
                    return
                data += chunk
            await stream.send_all(_response("200 OK", b"secret page", "text/plain"))
            await stream.aclose()

    listeners = await nursery.start(partial(trio.serve_ssl_over_tcp, handle, 0, context,
                                            host="127.0.0.1"))
    return listeners[0].transport_listener.socket.getsockname()[1], ca


async def tls_dns(host: str, port: int) -> list[str]:
    """secure.test and impostor.test live on loopback."""
    return ["127.0.0.1"] if host in ("secure.test", "impostor.test") else []


async def test_https_to_a_pinned_address_still_verifies_the_host_name(make_runner, session,
                                                                      tls_server):
    """The connection goes to the checked address, with SNI and certificate checks for
    the host name: the right name is fetched, another name on the same address is refused."""
    port, ca = tls_server
    runner = make_runner(resolve=tls_dns, web_allowed_hosts=("*",), web_fetch_ca_bundle=ca,
                         web_fetch_allow_private_hosts=("secure.test", "impostor.test"))
    good = await runner.call("web_fetch", {"url": f"https://secure.test:{port}/"},
                             session_id=session)
    assert good.ok, good.content
    assert good.content["text"] == "secret page"
    bad = await runner.call("web_fetch", {"url": f"https://impostor.test:{port}/"},
                            session_id=session)
    assert not bad.ok
    assert "CERTIFICATE_VERIFY_FAILED" in bad.content["error"]
