"""End to end: certificates for IP addresses (certbot 5's --ip-address) with
real certbot, pebble and nginx on loopback, IPv4 and IPv6.

The CA connects to the address itself and sends it as the Host, so the
block that answers is the default server of the most specific listen for
that address.  certbot refuses installers for IP certificates: the user
writes the ssl_certificate lines, and a deploy hook reloads nginx.
"""
import glob
import ipaddress
import os
import subprocess

import pytest

import lab
from certbot_nginx_webroot import probes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]


def certbot_has_ip_address() -> bool:
    proc = subprocess.run(lab.CERTBOT_COMMAND + ["--help", "all"], capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=lab.PLUGIN_PATH))
    return "--ip-address" in proc.stdout


needs_ip_address = pytest.mark.skipif(
    not certbot_has_ip_address(),
    reason="this certbot has no --ip-address (IP address certificates came with certbot 5.3)")


# For 127.0.0.1 the block listening on that very address answers, although
# another block is the default_server of the wildcard listen.  For ::1 no
# block listens on it, so the default_server of [::] answers (not the first).
SITES = {
    "127.0.0.1": {
        "wildcard.conf": """\
server {
    listen {http} default_server;
    server_name _;
    location / { return 404; }
}
""",
        "address.conf": """\
server {
    listen 127.0.0.1:{http};
    server_name app.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""},
    "::1": {
        "wildcard.conf": """\
server {
    listen [::]:{http};
    server_name first.example;
    location / { return 404; }
}
""",
        "address.conf": """\
server {
    listen [::]:{http} default_server;
    server_name app.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""},
}

# A name of its own beside the address (see test_ip_and_name_issue_and_renew).
NAME_SITE = """\
server {
    listen {http};
    server_name name.example;
    location / { return 200 "name\\n"; }
}
"""

HTTPS_BLOCK = """\
server {
    listen %s:{https} ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { return 200 "tls\\n"; }
}
"""


def served_to(addr, port=lab.HTTPS_PORT):
    """The certificate nginx serves a client connecting to addr (no SNI:
    there is none for an address)."""
    return lab.served_cert_der(addr, port=port, host=addr)


def certificate_text(path):
    return subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName",
                           "-in", path], capture_output=True, text=True, check=True).stdout


def ip_san(addr):
    """How openssl prints addr in a subjectAltName."""
    if ":" not in addr:
        return f"IP Address:{addr}"
    groups = ipaddress.ip_address(addr).exploded.split(":")
    return "IP Address:" + ":".join(f"{int(group, 16):X}" for group in groups)


def changed_files(before, after):
    return sorted(os.path.basename(path) for path in after if after[path] != before.get(path))


@needs_ip_address
@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_ip_certificate_challenge_goes_to_the_block_answering_the_address(acme, nginx, addr):
    for name, text in SITES[addr].items():
        nginx.write(f"sites/{name}", text)
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    before, reloads = nginx.snapshot(), nginx.reloads()
    proc = certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                       "--ip-address", addr, check=False)
    # The challenge location went into the block nginx picks for a
    # connection to addr, and only there: one edit, one reload.
    after = nginx.snapshot()
    assert changed_files(before, after) == ["address.conf"]
    assert nginx.reloads() - reloads == 1
    # The CA validated it and issued the certificate.
    [cert] = glob.glob(certbot.live("*", "cert.pem"))
    text = certificate_text(cert)
    assert ip_san(addr) in text
    if proc.returncode != 0:
        # pebble before 2.5 (Debian 12 has 2.4) also writes the address as the
        # subject's CN; certbot 5 reads a CN as a DNS name and stops after
        # saving the certificate.  Let's Encrypt writes no CN.
        assert "CN = " + addr in text and "is an IP address" in proc.stderr, proc.stderr
    assert "location ^~ /.well-known/acme-challenge/" in after[
        os.path.join(nginx.prefix, "sites", "address.conf")].decode()


@needs_ip_address
@pytest.mark.parametrize("addr", ["127.0.0.1", "::1"])
def test_ip_and_name_issue_and_renew(acme, nginx, addr):
    """The recipe in docs/behaviour.md, end to end: certonly, the user's HTTPS block, a
    deploy hook that reloads; the renewal edits nothing and reloads only
    through the hook.  (A name rides along so that pebble 2.4 puts it, not
    the address, in the CN; see the test above.)"""
    for name, text in SITES[addr].items():
        nginx.write(f"sites/{name}", text)
    nginx.write("sites/name.conf", NAME_SITE)
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    reload_hook = f"{lab.nginx_binary()} -p {nginx.prefix} -c {nginx.conf} -s reload"
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(), "--cert-name",
                "ip", "-d", "name.example", "--ip-address", addr, "--deploy-hook", reload_hook)
    # The name's block, and for the address the block that answers it
    # (which also answers the name on that address); the wildcard default
    # is left alone.
    assert changed_files(before, nginx.snapshot()) == ["address.conf", "name.conf"]
    assert nginx.reloads() - reloads == 2  # the challenge location, the deploy hook
    fullchain, key = certbot.live("ip"), certbot.live("ip", "privkey.pem")
    assert ip_san(addr) in certificate_text(fullchain)

    # The user's own HTTPS block for the address.
    bracketed = f"[{addr}]" if ":" in addr else addr
    nginx.write("sites/https.conf", HTTPS_BLOCK % (bracketed, fullchain, key))
    subprocess.run(reload_hook.split(), check=True)
    first = lab.leaf_der(fullchain)
    assert probes.wait_until(lambda: served_to(addr) == first, 10)

    # Renewal: no edit, and the deploy hook's reload is the only one.
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.snapshot() == before
    assert nginx.reloads() - reloads == 1
    renewed = lab.leaf_der(fullchain)
    assert renewed != first
    assert probes.wait_until(lambda: served_to(addr) == renewed, 10)


@needs_ip_address
def test_address_nginx_does_not_listen_on_is_refused(acme, nginx):
    nginx.write("sites/v4.conf", SITES["127.0.0.1"]["wildcard.conf"])
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    before = nginx.snapshot()
    proc = certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                       "--ip-address", "::1", check=False)
    assert proc.returncode == 1
    assert "nginx does not listen on [::1] port" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert nginx.snapshot() == before
