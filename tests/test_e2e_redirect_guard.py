"""End to end: what --redirect lets past a site's checks, what counts as a
redirect in place, and which methods the challenge location answers (issue
20, D1, D2, E2).  Real certbot, pebble and nginx, as in test_e2e.py.

Requests from 127.0.0.2 stand for a client outside a site's allow list (the
lab's CA and self-check come from 127.0.0.1, which the lists admit).
"""
import http.client
import os

import pytest

import lab
from test_e2e import (issue_then_renew, site_text, snakeoil, start_site, user_lines,
                      write_file)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

OUTSIDER = "127.0.0.2"
OFFICE_GEO = "geo $office {\n    default 0;\n    127.0.0.1/32 1;\n}\n"


def request(method, name, path, body=None, source="127.0.0.1", headers=None):
    """(status, body) of one plain-HTTP request to the lab's nginx, sent
    from source."""
    conn = http.client.HTTPConnection("127.0.0.1", lab.HTTP_PORT, timeout=5,
                                      source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}, Host=name))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


# -- D1: the guard opens nothing but challenge files ---------------------------

def test_another_authenticator_redirect_keeps_the_server_level_check(acme, nginx):
    # The :80 block serves files from its root before the app (certbot's
    # webroot plugin writes there), but has no location for challenges.  A
    # server-level allow list refuses everybody outside the office.
    site = OFFICE_GEO + """\
server {
    listen {http};
    server_name office.example;
    root {prefix}/www;
    if ($office = 0) { return 403; }
    location / { try_files $uri @app; }
    location @app { proxy_pass http://127.0.0.1:{backend}; }
}
"""
    certbot = start_site(acme, nginx, site)
    for path in ("/", "/.well-known/acme-challenge/x"):
        assert request("GET", "office.example", path, source=OUTSIDER)[0] == 403, path
    certbot.run("run", "-a", "webroot", "-w", os.path.join(nginx.prefix, "www"),
                "-i", "nginx-webroot", *certbot.installer_args(),
                "-d", "office.example", "--redirect")
    assert lab.served_cert_der("office.example") == lab.leaf_der(certbot.live("office.example"))
    # No location serves challenge files alone: nothing gets past the check
    # or the redirect, under the challenge path or elsewhere.
    for path in ("/", "/.well-known/acme-challenge/x", "/.well-known/acme-challenge/a-b_C9"):
        status, body = request("GET", "office.example", path, source=OUTSIDER)
        assert status in (301, 403) and b"backend" not in body, (path, status, body)
        assert request("GET", "office.example", path)[0] == 301, path
    assert "break;" not in site_text(nginx)
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(site))


def test_the_redirect_lets_past_only_what_the_challenge_location_serves(acme, nginx):
    # An adopted challenge location without ^~: a regex location takes the
    # .php URIs under the challenge path to the app.  --redirect with this
    # plugin as authenticator must not open those to the outsiders the
    # server-level check refuses.
    site = OFFICE_GEO + """\
server {
    listen {http};
    server_name legacy.example;
    if ($office = 0) { return 403; }
    location /.well-known/acme-challenge/ { root {prefix}/webroot; }
    location ~ \\.php$ { proxy_pass http://127.0.0.1:{backend}; }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""
    issue_then_renew(acme, nginx, site, ["legacy.example"], "--redirect")
    for path in ("/", "/.well-known/acme-challenge/x.php", "/.well-known/acme-challenge/a/b"):
        status, body = request("GET", "legacy.example", path, source=OUTSIDER)
        assert status in (301, 403) and b"backend" not in body, (path, status, body)
        assert request("GET", "legacy.example", path)[0] == 301, path
    # A challenge file is still served on plain HTTP to the CA (renewal passed).
    write_file(nginx, "webroot/.well-known/acme-challenge/Tok-en_1", "key-auth\n")
    assert request("GET", "legacy.example", "/.well-known/acme-challenge/Tok-en_1") == (
        200, b"key-auth\n")
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(site))


# -- D2: only a redirect for every request counts ------------------------------

@pytest.mark.parametrize("condition, target", [
    ("$request_uri ~ ^/admin", "https://$host$request_uri"),
    ("$host != cond.example", "https://cond.example$request_uri"),
    ("$args", "https://$host$request_uri"),
], ids=["request-uri", "host-not-the-name", "args"])
def test_a_conditional_redirect_is_not_the_redirect_in_place(acme, nginx, condition, target):
    # The site has its HTTPS block; before, certbot said "already redirects"
    # and exited 0 while the name stayed on plain HTTP.
    cert, key = snakeoil(nginx)
    site = """\
server {
    listen {http};
    server_name cond.example www.cond.example;
    if (%s) { return 301 %s; }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}

server {
    listen {https} ssl;
    server_name cond.example www.cond.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (condition, target, cert, key)
    issue_then_renew(acme, nginx, site, ["cond.example"], "--redirect")
    assert request("GET", "cond.example", "/page")[0] == 301
    assert lab.https_response("cond.example", "/page") == (200, b"backend 127.0.0.1\n")
    assert user_lines(site_text(nginx)) == [line for line in user_lines(nginx.fill(site))
                                            if "ssl_certificate" not in line]


def test_a_redirect_for_every_request_of_the_name_is_kept(acme, nginx):
    # The converse: certbot's own redirect-only form, with a host condition
    # that holds for the name, is the redirect in place.
    cert, key = snakeoil(nginx)
    site = """\
server {
    if ($host ~* ^kept\\.example$) { return 301 https://$host$request_uri; }
    listen {http};
    server_name kept.example;
    return 404;
}

server {
    listen {https} ssl;
    server_name kept.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key)
    certbot = start_site(acme, nginx, site)
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "kept.example", "--redirect")
    assert "$host = kept.example" not in site_text(nginx)  # no second redirect
    assert "nginx_webroot_redirect" not in site_text(nginx)
    assert request("GET", "kept.example", "/page")[0] == 301


# -- E2: the challenge location answers GET and HEAD only ----------------------

def test_the_challenge_location_refuses_webdav_and_other_methods(acme, nginx):
    write_file(nginx, "htpasswd", "user:$apr1$lL0pWWmT$Q1m4M/UdpDBXK5Ql1b.bV/\n")
    site = """\
server {
    listen {http};
    server_name dav.example;
    root {prefix}/www;
    dav_methods PUT DELETE MKCOL COPY MOVE;
    create_full_put_path on;
    auth_basic "files";
    auth_basic_user_file {prefix}/htpasswd;
}
"""
    issue_then_renew(acme, nginx, site, ["dav.example"], "--no-redirect")
    # A challenge file as during a validation, in a directory the web
    # server's user may write to (as when it owns the webroot).
    challenge_dir = os.path.join(nginx.webroot, ".well-known", "acme-challenge")
    os.makedirs(challenge_dir, exist_ok=True)
    os.chmod(challenge_dir, 0o777)
    token = os.path.join(challenge_dir, "Tok-en_1")
    with open(token, "w") as f:
        f.write("key-auth\n")
    os.chmod(token, 0o666)
    uri = "/.well-known/acme-challenge/Tok-en_1"
    other = "http://dav.example/.well-known/acme-challenge/Other"
    for method, body, headers in [("PUT", b"forged\n", {}), ("DELETE", None, {}),
                                  ("MKCOL", None, {}), ("POST", b"x=1", {}),
                                  ("COPY", None, {"Destination": other}),
                                  ("MOVE", None, {"Destination": other}),
                                  ("PUT", b"new\n", {})]:
        path = uri.replace("Tok-en_1", "New") if body == b"new\n" else uri
        status, _ = request(method, "dav.example", path, body=body, headers=headers)
        assert status in (403, 405), (method, status)
    with open(token) as f:
        assert f.read() == "key-auth\n"
    assert sorted(os.listdir(challenge_dir)) == ["Tok-en_1"]
    assert request("GET", "dav.example", uri) == (200, b"key-auth\n")
    assert request("HEAD", "dav.example", uri)[0] == 200
    # The rest of the site keeps its WebDAV, behind its password.
    assert request("PUT", "dav.example", "/x", body=b"x")[0] == 401


def test_an_older_challenge_location_is_limited_when_a_certificate_is_installed(acme, nginx):
    # The location an earlier version added answers every method; the next
    # install (which edits and reloads anyway) limits it, renewals edit nothing.
    mark = "  # certbot-nginx-webroot"
    site = """\
server {
    listen {http};
    server_name olddav.example;
    root {prefix}/www;
    dav_methods PUT DELETE;
    location ^~ /.well-known/acme-challenge/ {%s
        root {prefix}/webroot;%s
        types { }%s
        default_type text/plain;%s
        disable_symlinks on from=$document_root;%s
        try_files $uri =404;%s
    }%s
}
""" % ((mark,) * 7)
    issue_then_renew(acme, nginx, site, ["olddav.example"], "--no-redirect")
    challenge_dir = os.path.join(nginx.webroot, ".well-known", "acme-challenge")
    os.makedirs(challenge_dir, exist_ok=True)
    os.chmod(challenge_dir, 0o777)
    token = os.path.join(challenge_dir, "Tok-en_1")
    with open(token, "w") as f:
        f.write("key-auth\n")
    os.chmod(token, 0o666)
    uri = "/.well-known/acme-challenge/Tok-en_1"
    assert request("PUT", "olddav.example", uri, body=b"forged\n")[0] in (403, 405)
    assert request("DELETE", "olddav.example", uri)[0] in (403, 405)
    assert request("GET", "olddav.example", uri) == (200, b"key-auth\n")
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(site))
    assert "limit_except GET {%s" % mark in site_text(nginx)
