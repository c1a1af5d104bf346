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


@pytest.fixture
def recording_server():
    """start(family, host): a loopback server on a free port that keeps
    what each connection sends in received, answers HTTP 200 "ok", then
    closes; returns (port, received)."""
    servers = []

    def start(family=socket.AF_INET, host="127.0.0.1"):
        sock = socket.socket(family)
        sock.bind((host, 0))
        sock.listen(8)
        received = []
        done = threading.Event()

        def serve():
            sock.settimeout(0.2)
            while not done.is_set():
                try:
                    conn, _ = sock.accept()
                except OSError:
                    continue
                with conn:
                    # The header and what follows are two writes: read
                    # until the client waits for an answer.
                    conn.settimeout(0.3)
                    try:
                        while True:
                            data = conn.recv(65536)
                            if not data:
                                break
                            received.append(data)
                    except socket.timeout:
                        pass
                    try:
                        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    except OSError:
                        pass
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        servers.append((sock, done, thread))
        return sock.getsockname()[1], received
    yield start
    for sock, done, thread in servers:
        done.set()
        thread.join()
        sock.close()


def _received(received):
    """What the server got on its one connection (TCP may split it)."""
    return b"".join(received)


def test_fetch_with_proxy_protocol_sends_the_header_first(recording_server):
    port, received = recording_server()
    assert probes.fetch("a.example", "*", port, "/x", proxy_protocol=True) == (200, b"ok")
    header, _, request = _received(received).partition(b"\r\n")
    proxy, family, source, dest, sport, dport = header.decode().split(" ")
    assert (proxy, family, source, dest, dport) == ("PROXY", "TCP4", "127.0.0.1", "127.0.0.1",
                                                    str(port))
    assert 0 < int(sport) < 65536 and int(sport) != port
    assert request.startswith(b"GET /x HTTP/1.1\r\n") and b"Host: a.example\r\n" in request


def test_fetch_without_proxy_protocol_sends_none(recording_server):
    port, received = recording_server()
    probes.fetch("a.example", "*", port, "/x")
    assert _received(received).startswith(b"GET /x ")


def test_proxy_header_over_ipv6_is_tcp6_from_loopback(recording_server):
    if not probes.is_local_address("::1"):
        pytest.skip("no IPv6 loopback here")
    port, received = recording_server(socket.AF_INET6, "::1")
    probes.fetch("a.example", "[::1]", port, "/", proxy_protocol=True)
    header = _received(received).split(b"\r\n")[0].decode().split(" ")
    assert header[:4] == ["PROXY", "TCP6", "::1", "::1"] and header[5] == str(port)


def test_served_certificate_sends_the_header_before_the_client_hello(recording_server):
    port, received = recording_server()
    with pytest.raises(probes.PROBE_ERRORS):  # the server speaks no TLS
        probes.served_certificate("a.example", "*", port, timeout=2, proxy_protocol=True)
    header, _, rest = _received(received).partition(b"\r\n")
    assert header.startswith(b"PROXY TCP4 127.0.0.1 127.0.0.1 ")
    assert rest[:1] == b"\x16"  # a TLS handshake record: the ClientHello


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
