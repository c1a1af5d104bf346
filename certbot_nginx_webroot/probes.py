"""What nginx serves, seen from outside: an HTTP GET with a Host header and
a TLS handshake with SNI, on loopback or the addresses the config listens
on.  Nothing here runs or signals nginx (that is a controller: controllers/)."""
import http.client
import re
import socket
import ssl
import time
from typing import Callable, Optional, Tuple

POLL_INTERVAL = 0.02
# What a probe of a port that does not speak HTTP or TLS as expected raises.
PROBE_ERRORS = (OSError, http.client.HTTPException, ssl.SSLError)


def connect_host(addr: str) -> str:
    """A host to connect to for a listen address ("*" means any)."""
    if addr == "*":
        return "127.0.0.1"
    if addr == "[::]":
        return "::1"
    return addr.strip("[]")


def is_local_address(ip: str) -> bool:
    """Whether ip is an address of this machine (binding to it works)."""
    family = socket.AF_INET6 if ":" in ip else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.bind((ip, 0))
        return True
    except OSError:
        return False


def proxy_header(sock: socket.socket) -> bytes:
    """A PROXY protocol v1 header for a connection of sock (what HAProxy's
    send-proxy, or a cloud balancer, puts before the client's bytes).  The
    source is loopback, not a public address of this machine: nginx with
    `real_ip_header proxy_protocol` takes it as the client address, so the
    probe is judged as a plain loopback probe would be."""
    peer = sock.getpeername()
    if sock.family == socket.AF_INET6:
        family, source = "TCP6", "::1"
    else:
        family, source = "TCP4", "127.0.0.1"
    return f"PROXY {family} {source} {peer[0]} {sock.getsockname()[1]} {peer[1]}\r\n".encode()


class _ProxyProtocolConnection(http.client.HTTPConnection):
    """An HTTP connection that sends a PROXY protocol header first."""

    def connect(self) -> None:
        super().connect()
        self.sock.sendall(proxy_header(self.sock))


def fetch(host: str, addr: str, port: int, path: str,
          timeout: float = 5.0, proxy_protocol: bool = False) -> Tuple[int, bytes]:
    """GET path from addr:port with Host: host; (status, body).  With
    proxy_protocol, a PROXY protocol header first (`listen ... proxy_protocol`
    drops a connection without one)."""
    connection = _ProxyProtocolConnection if proxy_protocol else http.client.HTTPConnection
    conn = connection(connect_host(addr), port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host, "Connection": "close",
                                           "User-Agent": "certbot-nginx-webroot self-check"})
        resp = conn.getresponse()
        return resp.status, resp.read(65536)
    finally:
        conn.close()


# OpenSSL cipher strings for TLS 1.2 ciphers authenticated by each key type.
_AUTH_CIPHERS = {"rsa": "aRSA", "ecdsa": "aECDSA"}


def served_certificate(sni: str, addr: str, port: int, timeout: float = 5.0,
                       key_type: Optional[str] = None, proxy_protocol: bool = False) -> bytes:
    """DER of the certificate served to a TLS client asking for sni; with
    key_type ("rsa", "ecdsa"), to a TLS 1.2 client offering only ciphers
    authenticated by that key type (nginx picks the certificate it has of
    that type; TLS 1.3 picks by signature algorithms, which Python cannot
    restrict).  With proxy_protocol, a PROXY protocol header goes before the
    ClientHello."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if key_type is not None:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers(_AUTH_CIPHERS[key_type])
    with socket.create_connection((connect_host(addr), port), timeout=timeout) as sock:
        if proxy_protocol:
            sock.sendall(proxy_header(sock))
        with context.wrap_socket(sock, server_hostname=sni) as tls:
            return tls.getpeercert(binary_form=True) or b""


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    """Poll check until it returns True or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return True
        except PROBE_ERRORS:
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def first_certificate_der(pem_path: str) -> Optional[bytes]:
    """DER of the first certificate in a PEM file (the leaf of a fullchain)."""
    with open(pem_path, encoding="ascii") as f:
        text = f.read()
    m = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", text, re.S)
    return ssl.PEM_cert_to_DER_cert(m.group(0)) if m else None
