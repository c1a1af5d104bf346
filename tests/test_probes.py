"""Probes of what a server answers, against throwaway loopback servers."""
import http.client
import socket
import ssl
import subprocess
import threading

import pytest

from certbot_nginx_webroot import probes


@pytest.fixture
def raw_server():
    """A loopback server on a free port answering every connection with the
    bytes in reply[0]; yields (port, reply)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    reply = [b""]
    done = threading.Event()

    def serve():
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.recv(65536)
                    conn.sendall(reply[0])
                except OSError:
                    pass
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], reply
    done.set()
    thread.join()
    sock.close()


def test_fetch_sends_the_host_and_returns_status_and_body(raw_server):
    port, reply = raw_server
    reply[0] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    assert probes.fetch("a.example", "*", port, "/x") == (200, b"ok")


def test_a_server_that_is_not_http_is_a_probe_error(raw_server):
    port, reply = raw_server
    reply[0] = b"SSH-2.0-OpenSSH_9.2\r\n"
    with pytest.raises(probes.PROBE_ERRORS) as err:
        probes.fetch("a.example", "127.0.0.1", port, "/x")
    assert isinstance(err.value, http.client.HTTPException)
    # and polling treats it as "not yet", not as a crash
    assert probes.wait_until(lambda: probes.fetch("a", "*", port, "/")[0] == 200, 0) is False


def test_connect_host():
    assert probes.connect_host("*") == "127.0.0.1"
    assert probes.connect_host("[::]") == "::1"
    assert probes.connect_host("[::1]") == "::1"
    assert probes.connect_host("192.0.2.1") == "192.0.2.1"


def test_first_certificate_der_is_the_leaf(tmp_path):
    pems = []
    for n in (1, 2):
        key, cert = tmp_path / f"k{n}", tmp_path / f"c{n}"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN=c{n}",
                        "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
        pems.append(cert.read_text())
    (tmp_path / "chain").write_text("".join(pems))
    assert probes.first_certificate_der(str(tmp_path / "chain")) == \
        ssl.PEM_cert_to_DER_cert(pems[0])
    (tmp_path / "empty").write_text("")
    assert probes.first_certificate_der(str(tmp_path / "empty")) is None
