"""TLS: certificates are always checked; a private CA is trusted only when named."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme

from cohere_batch_cli.exit_codes import ExitCode
from tests.conftest import TEST_KEY, Cli
from tests.support.fault_server import batch_json


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"batch": batch_json()}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    ca_file = tmp_path / "private-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    yield f"https://127.0.0.1:{httpd.server_address[1]}", ca_file
    httpd.shutdown()
    httpd.server_close()


def test_a_self_signed_server_is_refused_by_default(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    result = Cli(url, TEST_KEY)("--retries", "0", "get", "b-1", exit_code=ExitCode.NETWORK)
    assert "TLS error" in result.stderr and "--ca-bundle" in result.stderr


def test_ca_bundle_flag_trusts_the_private_ca(tls_server: tuple[str, Path]) -> None:
    url, ca_file = tls_server
    result = Cli(url, TEST_KEY)("--ca-bundle", str(ca_file), "get", "b-1", "--json")
    assert json.loads(result.stdout)["id"] == "b-1"


def test_ssl_cert_file_is_honoured(tls_server: tuple[str, Path]) -> None:
    url, ca_file = tls_server
    result = Cli(url, TEST_KEY)("get", "b-1", "--json", env={"SSL_CERT_FILE": str(ca_file)})
    assert json.loads(result.stdout)["id"] == "b-1"


def test_a_missing_ca_bundle_is_a_usage_error(tmp_path: Path) -> None:
    Cli("https://127.0.0.1:1", TEST_KEY)(
        "--ca-bundle", str(tmp_path / "nope.pem"), "get", "b", exit_code=ExitCode.USAGE
    )
