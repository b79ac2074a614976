"""TLS options: client certificates, an encrypted key, the cipher list (real handshakes)."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from wsgi2asgi.exceptions import ConfigError
from wsgi2asgi.server import Config, Server

Serve = Callable[..., Any]


async def peer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answer with the scheme the request came in on."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": scope["scheme"].encode()})


@pytest.fixture
def authority() -> trustme.CA:
    return trustme.CA()


def server_files(authority: trustme.CA, folder: Path) -> dict[str, str]:
    """The server's key and certificate, and the CA file that client certificates come from."""
    certificate = authority.issue_cert("127.0.0.1")
    files = {"ssl_keyfile": folder / "key.pem", "ssl_certfile": folder / "cert.pem"}
    certificate.private_key_pem.write_to_path(str(files["ssl_keyfile"]))
    certificate.cert_chain_pems[0].write_to_path(str(files["ssl_certfile"]))
    authority.cert_pem.write_to_path(str(folder / "ca.pem"))
    return {name: str(path) for name, path in files.items()}


def client_context(authority: trustme.CA, *, certificate: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    authority.configure_trust(context)
    if certificate:
        authority.issue_cert("client@example.com").configure_cert(context)
    return context


def test_client_certificate_required(serve: Serve, authority: trustme.CA, tmp_path: Path) -> None:
    files = server_files(authority, tmp_path)
    running = serve(peer, ssl_ca_certs=str(tmp_path / "ca.pem"), ssl_cert_reqs=2, **files)
    url = f"https://127.0.0.1:{running.port}/"
    with httpx.Client(verify=client_context(authority, certificate=True)) as client:
        assert client.get(url).text == "https"
    with (
        httpx.Client(verify=client_context(authority, certificate=False)) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get(url)  # no certificate: the handshake (or the first read) fails


def test_client_certificate_from_another_authority_is_refused(
    serve: Serve, authority: trustme.CA, tmp_path: Path
) -> None:
    files = server_files(authority, tmp_path)
    running = serve(peer, ssl_ca_certs=str(tmp_path / "ca.pem"), ssl_cert_reqs=2, **files)
    context = client_context(authority, certificate=False)
    trustme.CA().issue_cert("intruder@example.com").configure_cert(context)
    with (
        httpx.Client(verify=context) as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get(f"https://127.0.0.1:{running.port}/")


def test_optional_client_certificate(serve: Serve, authority: trustme.CA, tmp_path: Path) -> None:
    files = server_files(authority, tmp_path)
    running = serve(peer, ssl_ca_certs=str(tmp_path / "ca.pem"), ssl_cert_reqs=1, **files)
    for certificate in (True, False):
        context = client_context(authority, certificate=certificate)
        with httpx.Client(verify=context) as client:
            assert client.get(f"https://127.0.0.1:{running.port}/").text == "https"


def encrypt_key(path: str, password: bytes) -> None:
    with open(path, "rb") as file:
        key = serialization.load_pem_private_key(file.read(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(password),
    )
    with open(path, "wb") as file:
        file.write(encrypted)


def test_encrypted_key_with_its_password(
    serve: Serve, authority: trustme.CA, tmp_path: Path
) -> None:
    files = server_files(authority, tmp_path)
    encrypt_key(files["ssl_keyfile"], b"s3cret")
    running = serve(peer, ssl_keyfile_password="s3cret", **files)
    with httpx.Client(verify=client_context(authority, certificate=False)) as client:
        assert client.get(f"https://127.0.0.1:{running.port}/").text == "https"


async def test_encrypted_key_with_a_wrong_password_is_a_config_error(
    authority: trustme.CA, tmp_path: Path
) -> None:
    files = server_files(authority, tmp_path)
    encrypt_key(files["ssl_keyfile"], b"s3cret")
    server = Server(Config(app=peer, port=0, ssl_keyfile_password="wrong", **files))
    with pytest.raises(ConfigError, match="TLS"):
        await server.serve()


def test_cipher_list(serve: Serve, authority: trustme.CA, tmp_path: Path) -> None:
    files = server_files(authority, tmp_path)
    running = serve(peer, ssl_ciphers="ECDHE+AESGCM", **files)
    url = f"https://127.0.0.1:{running.port}/"

    def tls12_client(ciphers: str) -> httpx.Client:
        context = client_context(authority, certificate=False)
        context.maximum_version = ssl.TLSVersion.TLSv1_2  # TLS 1.3 suites are not configurable
        context.set_ciphers(ciphers)
        return httpx.Client(verify=context)

    with tls12_client("ECDHE+AESGCM") as client:
        assert client.get(url).text == "https"
    with (
        tls12_client("ECDHE+CHACHA20") as client,
        pytest.raises((httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)),
    ):
        client.get(url)  # no cipher in common
