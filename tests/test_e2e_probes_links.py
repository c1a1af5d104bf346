"""End to end: nginx behind a load balancer that speaks the PROXY protocol
(a real HAProxy with send-proxy in front of `listen ... proxy_protocol`),
and a site file enabled by a hard link.  Real certbot, pebble and nginx.

The CA reaches nginx only through HAProxy: its DNS answers 127.0.0.2, where
HAProxy listens on the http-01 and HTTPS ports and forwards to nginx on
127.0.0.1 with a PROXY header, as a balancer in front of a server does.  The
plugin's own probes go to nginx directly and must send that header
themselves.
"""
import os
import shutil
import socket
import subprocess

import pytest

import lab

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

BALANCER = "127.0.0.2"  # where the CA connects: HAProxy, in front of nginx on 127.0.0.1

HAPROXY_CONF = """\
global
    maxconn 64
defaults
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend http01
    mode http
    bind {balancer}:{http}
    default_backend nginx_http
backend nginx_http
    mode http
    server nginx 127.0.0.1:{http} send-proxy
frontend https
    mode tcp
    bind {balancer}:{https}
    default_backend nginx_https
backend nginx_https
    mode tcp
    server nginx 127.0.0.1:{https} send-proxy
"""


@pytest.fixture
def haproxy(tmp_path):
    """Starts a real HAProxy in front of nginx (HAPROXY_CONF); stopped after
    the test.  Without haproxy the test is skipped, and with CI set it fails
    at set-up (as lab.missing_tools does for the other tools)."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not os.path.exists(binary):
        if os.environ.get("CI"):
            pytest.fail("haproxy is not installed (Debian: apt-get install haproxy)")
        pytest.skip("haproxy is not installed")
    procs = []

    def start():
        conf = tmp_path / "haproxy.cfg"
        conf.write_text(HAPROXY_CONF.format(balancer=BALANCER, http=lab.HTTP_PORT,
                                            https=lab.HTTPS_PORT))
        subprocess.run([binary, "-c", "-q", "-f", str(conf)], check=True)
        log = open(tmp_path / "haproxy.log", "wb")
        procs.append(subprocess.Popen([binary, "-db", "-f", str(conf)],
                                      stdout=log, stderr=subprocess.STDOUT))
        lab.wait_port(BALANCER, lab.HTTP_PORT)
        lab.wait_port(BALANCER, lab.HTTPS_PORT)

    yield start
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def behind_balancer(acme):
    """The CA's DNS answers BALANCER for the names added; reset after."""
    names = []

    def resolve(name):
        names.append(name)
        acme.resolve(name, BALANCER)
    yield resolve
    for name in names:
        acme.resolve(name, None)


def dropped_without_header(port):
    """Whether nginx on 127.0.0.1:port drops a plain request (it wants a
    PROXY header first): the premise of these tests."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        try:
            return sock.recv(100) == b""
        except ConnectionResetError:  # closed with the request unread
            return True


def balancer_get(name, path):
    """(status, body) of GET path with Host name, through HAProxy."""
    with socket.create_connection((BALANCER, lab.HTTP_PORT), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {name}\r\n\r\n".encode())
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


PROXIED_SITE = """\
server {
    listen 127.0.0.1:{http} proxy_protocol;
    server_name %s;
    # the client's address is the one in the PROXY header, from the balancer
    set_real_ip_from 127.0.0.1;
    real_ip_header proxy_protocol;

    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
"""


def test_self_check_speaks_proxy_protocol(acme, nginx, haproxy, behind_balancer):
    """The first run adds the challenge location and its self-check sends a
    PROXY header (else nginx drops it and the run stops before the CA is
    asked); the renewal's self-check too, with no edit and no reload."""
    name = "pp.example"
    nginx.write("sites/site.conf", PROXIED_SITE % name)
    nginx.start()
    haproxy()
    behind_balancer(name)
    assert dropped_without_header(lab.HTTP_PORT)
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(), "-d", name)
    assert os.path.exists(certbot.live(name))
    # Through the balancer, the site is as it was: the backend answers.
    assert balancer_get(name, "/") == (200, b"backend 127.0.0.1\n")
    before, reloads, dropped = nginx.snapshot(), nginx.reloads(), broken_headers(nginx)
    previous = lab.leaf_der(certbot.live(name))
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert lab.leaf_der(certbot.live(name)) != previous
    assert nginx.snapshot() == before
    assert nginx.reloads() == reloads
    # Only the first, plain, request was dropped (as docs/faults.md says).
    assert broken_headers(nginx) - dropped == 1


def broken_headers(nginx):
    """Requests nginx dropped for lacking a PROXY header (its error log)."""
    with open(nginx.error_log, errors="replace") as f:
        return f.read().count("broken header")


def test_live_tls_check_speaks_proxy_protocol(acme, nginx, haproxy, behind_balancer):
    """The installer's check that nginx serves the new certificate (after
    the reload) sends a PROXY header before its ClientHello on a TLS listen
    with proxy_protocol.  The challenges here go through the manual recipe
    (certbot's webroot authenticator), so only the live check is tested."""
    name = "pptls.example"
    cert, key = snakeoil(nginx)
    nginx.write("sites/site.conf", """\
server {
    listen 127.0.0.1:{http} proxy_protocol;
    server_name %s;
    location ^~ /.well-known/acme-challenge/ {
        root {prefix}/webroot;
    }
    location / {
        return 301 https://$host$request_uri;
    }
}

server {
    listen 127.0.0.1:{https} ssl proxy_protocol;
    server_name %s;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""" % (name, name, cert, key))
    nginx.start()
    haproxy()
    behind_balancer(name)
    assert dropped_without_header(lab.HTTPS_PORT)
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    certbot.run("run", "-a", "webroot", "-w", nginx.webroot, "-i", "nginx-webroot",
                *certbot.installer_args(), "-d", name)
    issued = lab.leaf_der(certbot.live(name))
    # Served through the balancer, as a browser gets it.
    assert lab.served_cert_der(name, host=BALANCER) == issued
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        assert certbot.live(name) in f.read()
    # A renewal: one reload, no file changed, live when certbot exits.
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1
    assert nginx.snapshot() == before
    renewed = lab.leaf_der(certbot.live(name))
    assert renewed != issued
    assert lab.served_cert_der(name, host=BALANCER) == renewed


def snakeoil(nginx, name="snakeoil"):
    """A self-signed placeholder, as hand-made 443 blocks usually have."""
    cert = os.path.join(nginx.prefix, f"{name}.pem")
    key = os.path.join(nginx.prefix, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=snakeoil",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def test_hard_linked_site_file_stays_one_file(acme, nginx):
    """A site enabled with `ln ../sites-available/app app.conf` (no -s):
    after the install both names are still one file (one inode) holding the
    edit, with its mode, and nginx -t passes."""
    name = "hardlink.example"
    available = nginx.write("sites-available/app", """\
server {
    listen {http};
    server_name %s;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""" % name)
    enabled = os.path.join(nginx.prefix, "sites", "app.conf")
    os.link(available, enabled)
    os.chmod(available, 0o640)
    inode = os.stat(available).st_ino
    with open(available, "rb") as f:
        original = f.read()
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", name, "--no-redirect")
    st_available, st_enabled = os.stat(available), os.stat(enabled)
    assert st_available.st_ino == st_enabled.st_ino == inode
    assert st_enabled.st_nlink == 2
    assert st_enabled.st_mode & 0o7777 == 0o640
    with open(available) as f:
        text = f.read()
    assert certbot.live(name) in text  # the file the user edits holds the edit
    assert "# certbot-nginx-webroot" in text
    assert not [f for f in os.listdir(os.path.dirname(enabled)) if f.startswith(".")]
    subprocess.run([lab.nginx_binary(), "-t", "-q", "-p", nginx.prefix, "-c", nginx.conf],
                   check=True)
    assert lab.served_cert_der(name) == lab.leaf_der(certbot.live(name))
    # certbot's rollback (it copies its backup back) restores the file as it
    # was, in place: still one file under both names.
    certbot.run("rollback", "-i", "nginx-webroot", *certbot.installer_args(),
                "--checkpoints", "10")
    with open(enabled, "rb") as f:
        assert f.read() == original
    assert os.stat(enabled).st_ino == os.stat(available).st_ino == inode
