"""Downloads from a server the test runs on 127.0.0.1: success, 404, hash, interruption, cancel."""

from __future__ import annotations

import hashlib
import socket
import ssl
import threading
from pathlib import Path

import pytest
from registry_helpers import LocalHTTPServer

from tamale.errors import TamaleInputError
from tamale.progress import Cancelled, CancelToken
from tamale.registry.download import cache_path, download

BODY = bytes(range(256)) * 400  # 100 KiB
SHA = hashlib.sha256(BODY).hexdigest()


def test_download_lands_in_the_cache_with_its_hash_and_progress(http_server, tamale_home):
    http_server.files["w/model.pth"] = BODY
    events = []
    got = download(http_server.url("w/model.pth?download=1"), SHA, progress=events.append)
    assert got.fetched and got.sha256 == SHA
    assert got.path.read_bytes() == BODY
    assert got.path.parent == tamale_home / "cache" / "downloads"
    assert got.path.name.endswith("-model.pth")
    stages = {e.stage for e in events}
    assert stages == {"download"}
    assert events[-1].step == events[-1].total == len(BODY)
    # a second call finds the file in the cache: no new request
    n = len(http_server.requests)
    again = download(http_server.url("w/model.pth?download=1"), SHA)
    assert not again.fetched and again.path == got.path and len(http_server.requests) == n


def test_unknown_hash_is_computed(http_server):
    http_server.files["m.pth"] = BODY
    assert download(http_server.url("m.pth")).sha256 == SHA


def test_urls_with_the_same_file_name_do_not_collide(http_server):
    http_server.files["a/model.pth"] = b"first"
    http_server.files["b/model.pth"] = b"second"
    one = download(http_server.url("a/model.pth"))
    two = download(http_server.url("b/model.pth"))
    assert one.path != two.path
    assert one.path.read_bytes() == b"first" and two.path.read_bytes() == b"second"


def test_404_is_an_error_and_leaves_nothing(http_server, tamale_home, cache_files):
    with pytest.raises(TamaleInputError, match="HTTP 404"):
        download(http_server.url("missing.pth"))
    assert cache_files() == []


def test_hash_mismatch_is_an_error_and_leaves_nothing(http_server, tamale_home, cache_files):
    http_server.files["m.pth"] = BODY
    with pytest.raises(TamaleInputError, match="hash mismatch"):
        download(http_server.url("m.pth"), "0" * 64)
    assert cache_files() == []


def test_interrupted_transfer_leaves_no_partial_file(http_server, tamale_home, cache_files):
    http_server.files["m.pth"] = BODY
    with pytest.raises(TamaleInputError, match="could not download"):
        download(http_server.url("truncated/m.pth"))
    assert cache_files() == []


def test_unreachable_server_is_an_error(tamale_home, cache_files):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(TamaleInputError, match="could not download"):
        download(f"http://127.0.0.1:{port}/m.pth")
    assert cache_files() == []


def test_cancel_stops_the_transfer_and_keeps_nothing(http_server, tamale_home, cache_files):
    http_server.files["big.pth"] = BODY
    token = CancelToken()

    def cancel_after_first(event):
        if event.step > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        download(http_server.url("slow/big.pth"), progress=cancel_after_first, cancel=token)
    assert cache_files() == []


def test_a_cached_file_with_the_wrong_hash_is_downloaded_again(http_server):
    http_server.files["m.pth"] = BODY
    url = http_server.url("m.pth")
    path = cache_path(url)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"tampered")
    got = download(url, SHA)
    assert got.fetched and path.read_bytes() == BODY


def test_not_a_url_is_refused():
    with pytest.raises(TamaleInputError, match="not an http"):
        cache_path("/some/file.pth")


def _self_signed_https_server(tmp_path: Path):
    x509 = pytest.importorskip("cryptography.x509")
    import datetime

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    import http.server

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"hello")

    httpd = LocalHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    return httpd, thread


def test_ssl_verification_stays_on_and_nothing_global_changes(tmp_path, tamale_home, cache_files):
    import requests

    before = (
        ssl._create_default_https_context,
        requests.Session.merge_environment_settings,
        requests.Session.request,
    )
    httpd, thread = _self_signed_https_server(tmp_path)
    try:
        port = httpd.server_address[1]
        with pytest.raises(TamaleInputError, match="SSLError"):
            download(f"https://127.0.0.1:{port}/m.pth")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
    assert cache_files() == []
    after = (
        ssl._create_default_https_context,
        requests.Session.merge_environment_settings,
        requests.Session.request,
    )
    assert before == after
