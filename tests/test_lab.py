"""The lab's own TLS: the CA and pebble's certificate that tests/lab.py makes
must pass the strict X.509 verification that Python 3.13 (Debian 13) and
urllib3 2 turn on for certbot's connections to the ACME server."""
import shutil
import socket
import ssl
import subprocess
import threading

import pytest

import lab

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def strict_client(cafile):
    """A client context as Python 3.13's ssl.create_default_context() makes
    it: VERIFY_X509_STRICT on (set here, so the test means the same on any
    Python)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    return ctx


def handshake(cert, key, cafile, server_hostname):
    """A TLS handshake over a socket pair: the server serves cert, the
    client verifies it strictly against cafile for server_hostname.
    Returns None on success, else the client's verification error."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server_sock, client_sock = socket.socketpair()
    errors = []

    def serve():
        try:
            with server_ctx.wrap_socket(server_sock, server_side=True):
                pass
        except (ssl.SSLError, OSError) as err:
            errors.append(err)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with strict_client(cafile).wrap_socket(client_sock, server_hostname=server_hostname):
            return None
    except ssl.SSLCertVerificationError as err:
        return err.verify_message
    finally:
        client_sock.close()
        thread.join(10)


@pytest.mark.parametrize("server_hostname", ["localhost", "127.0.0.1"])  # the ACME URL's host
def test_lab_ca_passes_strict_verification(tmp_path, server_hostname):
    tls = lab.make_tls_cert(str(tmp_path))
    assert handshake(tls["cert"], tls["key"], tls["ca"], server_hostname) is None


def test_strict_verification_refuses_a_ca_without_key_usage(tmp_path):
    """The check above can fail: a CA made as the lab made it before
    (openssl's defaults, no keyUsage) is refused with the error certbot
    printed on Debian 13."""
    tls = lab.make_tls_cert(str(tmp_path))
    bare_ca = str(tmp_path / "bare-ca.pem")
    subprocess.run(["openssl", "req", "-x509", "-key", tls["ca-key"], "-nodes", "-days", "1",
                    "-subj", "/CN=lab test CA", "-out", bare_ca], check=True, capture_output=True)
    # Re-sign the server certificate's key under the bare CA.
    csr, cert = str(tmp_path / "s.csr"), str(tmp_path / "s.pem")
    subprocess.run(["openssl", "req", "-new", "-key", tls["key"], "-subj", "/CN=localhost",
                    "-out", csr], check=True, capture_output=True)
    ext = tmp_path / "ext.cnf"
    ext.write_text("subjectAltName=DNS:localhost\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", bare_ca, "-CAkey",
                    tls["ca-key"], "-set_serial", "2", "-days", "1", "-extfile", str(ext),
                    "-out", cert], check=True, capture_output=True)
    assert "key usage" in handshake(cert, tls["key"], bare_ca, "localhost")
