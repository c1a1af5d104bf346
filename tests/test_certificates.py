"""Reading certificate and key files: names and key type."""
import subprocess

import pytest

from certbot_nginx_webroot import certificates


def make(tmp_path, key_type, san="DNS:a.example", key_format=None):
    """A self-signed certificate and its key of key_type; key_format
    "traditional" writes "BEGIN EC/RSA PRIVATE KEY" instead of PKCS#8."""
    key, cert = tmp_path / f"{key_type}.key", tmp_path / f"{key_type}.pem"
    new_key = ["-newkey", "rsa:2048"] if key_type == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-days", "1",
                    "-subj", "/CN=a.example", "-addext", f"subjectAltName={san}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    if key_format == "traditional":
        # `openssl ec` writes the traditional form by default; `openssl rsa` on request.
        command = ["openssl", "rsa", "-traditional"] if key_type == "rsa" else ["openssl", "ec"]
        subprocess.run(command + ["-in", str(key), "-out", str(key)], check=True,
                       capture_output=True)
    return str(cert), str(key)


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
@pytest.mark.parametrize("key_format", [None, "traditional"])
def test_key_type_from_the_key_and_from_the_certificate(tmp_path, key_type, key_format):
    cert, key = make(tmp_path, key_type, key_format=key_format)
    marker = {"rsa": b"RSA PRIVATE KEY", "ecdsa": b"EC PRIVATE KEY"}[key_type]
    assert (marker in open(key, "rb").read()) == (key_format == "traditional")
    assert certificates.key_type(key) == key_type
    assert certificates.key_type(cert) == key_type


def test_unreadable_files_have_no_key_type_and_no_names(tmp_path):
    (tmp_path / "junk.pem").write_text("-----BEGIN PRIVATE KEY-----\nnope\n")
    assert certificates.key_type(str(tmp_path / "junk.pem")) is None
    assert certificates.key_type(str(tmp_path / "missing.pem")) is None
    assert certificates.names(str(tmp_path / "missing.pem")) == []


def test_names_include_ip_addresses(tmp_path):
    cert, _ = make(tmp_path, "ecdsa", san="DNS:a.example,IP:192.0.2.10,IP:2001:db8::1")
    assert certificates.names(cert) == ["a.example", "192.0.2.10", "2001:db8::1"]
