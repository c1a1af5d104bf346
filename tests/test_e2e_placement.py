"""End to end: where the installer puts a certificate (issue 20, C1 C2 C4 C5).

Real certbot with this plugin, real pebble, real nginx: each case installs,
then checks which certificate nginx serves for every name, what the
configuration now says, and that a renewal is one reload and no edit.
"""
import os
import subprocess

import pytest

import lab
from certbot_nginx_webroot.controllers.local import LocalNginx
from certbot_nginx_webroot import edit, build_info
from test_e2e import issue_then_renew, renew_is_one_reload, site_text, start_site, user_lines

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]


def self_signed(nginx, name, *sans):
    """A self-signed certificate for sans (a wildcard one, which http-01
    cannot get), as a user's own certificate from another CA."""
    cert = os.path.join(nginx.prefix, f"{name}.pem")
    key = os.path.join(nginx.prefix, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN={sans[0]}",
                    "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in sans),
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def nginx_warnings(nginx):
    """What nginx -t says at warn level or above (e.g. "conflicting server name")."""
    proc = subprocess.run([lab.nginx_binary(), "-p", nginx.prefix, "-c", nginx.conf, "-t"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stderr.splitlines() if "[warn]" in line or "[emerg]" in line]


def install_args(certbot, *names):
    args = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args()]
    for name in names:
        args += ["-d", name]
    return args


def server_blocks(text):
    return text.count("server {")


@pytest.mark.parametrize("server_name", [
    r"~^(?<sub>[a-z0-9-]+)\.wild\.example$",   # the issue's regex
    r"~^(www|api|foo)\.wild\.example$",         # a list of them
    "*.wild.example",                           # a wildcard (refused before too)
])
def test_a_wildcard_certificate_is_not_replaced_by_one_for_fewer_names(acme, nginx, server_name):
    """C1: the block answers every subdomain; the new certificate covers one."""
    cert, key = self_signed(nginx, "wild", "*.wild.example")
    nginx.write("sites/tls.conf", """\
server {
    listen {https} ssl;
    server_name %s;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (server_name, cert, key))
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % server_name)
    tls_conf = os.path.join(nginx.prefix, "sites/tls.conf")

    def certificate_lines():  # (the challenge location may go into the block)
        with open(tls_conf) as f:
            return [line for line in f if "ssl_certificate" in line]
    before = certificate_lines()
    proc = certbot.run(*install_args(certbot, "foo.wild.example"), "--no-redirect", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, output
    assert "*.wild.example" in output and "with " + cert in output, output
    assert certificate_lines() == before
    wildcard = lab.leaf_der(cert)
    for name in ("foo.wild.example", "www.wild.example", "api.wild.example"):
        assert lab.served_cert_der(name) == wildcard, name


def test_expanding_a_certificate_puts_the_new_name_in_the_https_block_there_is(acme, nginx):
    """C2: issue for a, then expand to a and b, on a :80 block with both."""
    site = """\
server {
    listen {http};
    server_name a.example b.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""
    certbot = start_site(acme, nginx, site)
    certbot.run(*install_args(certbot, "a.example"), "--redirect")
    assert lab.served_cert_der("a.example") == lab.leaf_der(certbot.live("a.example"))
    blocks = server_blocks(site_text(nginx))
    certbot.run(*install_args(certbot, "a.example", "b.example"), "--expand", "--redirect")
    issued = lab.leaf_der(certbot.live("a.example"))
    for name in ("a.example", "b.example"):
        assert lab.served_cert_der(name) == issued, name
        assert lab.https_response(name, "/page") == (200, b"backend 127.0.0.1\n"), name
        assert lab.http_get(name, "/page")[0] == 301, name
    assert server_blocks(site_text(nginx)) == blocks  # no second HTTPS block
    assert nginx_warnings(nginx) == []
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(site))
    renew_is_one_reload(certbot, nginx, ["a.example", "b.example"])
    # Every later run for the lineage works too.
    before = nginx.snapshot()
    certbot.run(*install_args(certbot, "a.example", "b.example"), "--redirect",
                "--force-renewal")
    assert nginx.snapshot() == before and nginx_warnings(nginx) == []
    assert lab.served_cert_der("b.example") == lab.leaf_der(certbot.live("a.example"))


def test_a_name_only_the_default_https_block_answers_is_installed_there(acme, nginx):
    """C4: the app's 443 block is the default_server and names example.com
    alone; the certificate also covers www; :80 only redirects."""
    cert, key = self_signed(nginx, "placeholder", "localhost")
    site = """\
server {
    listen {http} default_server;
    server_name _;
    return 301 https://$host$request_uri;
}

server {
    listen {https} ssl default_server;
    server_name app.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key)
    certbot = issue_then_renew(acme, nginx, site, ["app.example", "www.app.example"],
                               "--redirect")
    text = site_text(nginx)
    assert server_blocks(text) == 2 and cert not in text
    assert text.count(certbot.live("app.example")) == 1  # one block has it
    assert lab.https_response("www.app.example", "/") == (200, b"backend 127.0.0.1\n")
    assert nginx_warnings(nginx) == []


@pytest.mark.parametrize("redirect", ["--redirect", "--no-redirect"])
def test_a_block_that_serves_gets_tls_itself_not_a_copy(acme, nginx, redirect):
    """C5: the :80 block that serves the site gets the TLS listens and the
    certificate; the redirect, if asked for, is for plain HTTP only."""
    site = """\
server {
    listen {http};
    listen [::]:{http};
    server_name app.example www.app.example;
    root {prefix}/www;
    location /api/ { proxy_pass http://127.0.0.1:{backend}; }
    location / { try_files $uri =404; }
}
"""
    with open(os.path.join(nginx.prefix, "www", "index.txt"), "w") as f:
        f.write("the app\n")
    issue_then_renew(acme, nginx, site, ["app.example", "www.app.example"], redirect,
                     check_ipv6=True)
    text = site_text(nginx)
    assert server_blocks(text) == 1, text  # no copy
    assert user_lines(text) == user_lines(nginx.fill(site))  # the user's lines as they were
    form = LocalNginx(lab.nginx_binary(), nginx.conf).build_info().http2_form
    flags = "ssl http2" if form == build_info.HTTP2_LISTEN else "ssl"
    assert f"    listen {lab.HTTPS_PORT} {flags};  {edit.MARK}\n" in text
    assert f"    listen [::]:{lab.HTTPS_PORT} {flags};  {edit.MARK}\n" in text
    for name in ("app.example", "www.app.example"):
        assert lab.https_response(name, "/index.txt") == (200, b"the app\n"), name
        assert lab.https_response(name, "/api/x") == (200, b"backend 127.0.0.1\n"), name
        status = lab.http_get(name, "/index.txt")[0]
        assert status == (301 if redirect == "--redirect" else 200), name
    assert nginx_warnings(nginx) == []


def test_a_redirect_only_block_is_still_copied_for_https(acme, nginx):
    """C5: a :80 block that cannot serve HTTPS (it only redirects to another
    name) is the one case that gets a copy."""
    site = """\
server {
    listen {http};
    server_name old.example;
    return 301 https://new.example$request_uri;
}
"""
    issue_then_renew(acme, nginx, site, ["old.example"], "--redirect")
    assert server_blocks(site_text(nginx)) == 2
    assert lab.https_response("old.example", "/page")[0] == 301


def test_a_name_with_its_own_block_gets_its_own_https_block_beside_a_wildcard(acme, nginx):
    """C1, "put the new pair where it belongs": foo.wild.example has a :80
    block of its own; the wildcard HTTPS block keeps serving the others."""
    cert, key = self_signed(nginx, "wild", "*.wild.example")
    nginx.write("sites/tls.conf", """\
server {
    listen {https} ssl;
    server_name ~^(?<sub>[a-z0-9-]+)\\.wild\\.example$;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { return 200 "wildcard site\\n"; }
}
""" % (cert, key))
    certbot = issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name foo.wild.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""", ["foo.wild.example"], "--no-redirect")
    assert lab.served_cert_der("www.wild.example") == lab.leaf_der(cert)
    assert lab.https_response("www.wild.example", "/") == (200, b"wildcard site\n")
    assert lab.served_cert_der("foo.wild.example") == lab.leaf_der(
        certbot.live("foo.wild.example"))
    assert lab.https_response("foo.wild.example", "/") == (200, b"backend 127.0.0.1\n")
    assert nginx_warnings(nginx) == []
