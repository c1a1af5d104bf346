"""End to end: where the issue-20 changes meet (in-place TLS with the new
redirect form, the dry run's temporary location beside an allow list, a run
after a run)."""
import os
import subprocess

import pytest
from acme import challenges

import lab
from certbot_nginx_webroot import edit
from test_e2e import start_site, site_text

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

APP = """\
server {
    listen {http};
    server_name app.example;
    root {prefix}/www;
    location / { try_files $uri =404; }
}
"""


def args(certbot, *names):
    found = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args()]
    for name in names:
        found += ["-d", name]
    return found


def nginx_warnings(nginx):
    proc = subprocess.run([lab.nginx_binary(), "-p", nginx.prefix, "-c", nginx.conf, "-t"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return [line for line in proc.stderr.splitlines() if "[warn]" in line]


def test_in_place_tls_with_redirect_serves_challenges_and_reruns_add_nothing(acme, nginx):
    with open(os.path.join(nginx.prefix, "www", "index.txt"), "w") as f:
        f.write("the app\n")
    certbot = start_site(acme, nginx, APP)
    certbot.run(*args(certbot, "app.example"), "--redirect")
    text = site_text(nginx)
    assert text.count("server {") == 1, text  # in place
    assert lab.http_get("app.example", "/index.txt")[0] == 301
    assert lab.https_response("app.example", "/index.txt") == (200, b"the app\n")
    # A challenge file is served over plain HTTP, not redirected.
    challenge_dir = os.path.join(nginx.webroot, challenges.HTTP01.URI_ROOT_PATH)
    os.makedirs(challenge_dir, exist_ok=True)
    with open(os.path.join(challenge_dir, "tok-en_1"), "w") as f:
        f.write("key-authz\n")
    uri = "/" + challenges.HTTP01.URI_ROOT_PATH + "/tok-en_1"
    assert lab.http_get("app.example", uri) == (200, b"key-authz\n")
    assert lab.https_response("app.example", uri) == (200, b"key-authz\n")
    assert nginx_warnings(nginx) == []
    # Asking again edits nothing and reloads nothing.
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("install", "-i", "nginx-webroot", "--cert-name", "app.example",
                "--redirect", *certbot.installer_args())
    certbot.run("enhance", "-i", "nginx-webroot", "--cert-name", "app.example",
                "--redirect", *certbot.installer_args())
    assert nginx.snapshot() == before, site_text(nginx)
    # A second real run of the authenticator, then a renewal: nothing undone.
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", "app.example", "--force-renewal")
    assert nginx.snapshot() == before
    assert lab.http_get("app.example", "/index.txt")[0] == 301


def test_first_dry_run_behind_an_allow_list_then_real_runs(acme, nginx):
    site = """\
server {
    listen {http};
    server_name office.example;
    allow 10.0.0.0/8;
    deny all;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
"""
    certbot = start_site(acme, nginx, site)
    before = nginx.snapshot()
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", "office.example", "--dry-run")
    assert nginx.snapshot() == before
    certbot.run(*args(certbot, "office.example"), "--redirect")
    after = nginx.snapshot()
    assert edit.MARK in site_text(nginx)
    # A second run (a dry run, then a real one) undoes nothing of the first.
    certbot.run("renew", "--dry-run", "--no-random-sleep-on-renew")
    assert nginx.snapshot() == after
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", "office.example", "--force-renewal")
    assert nginx.snapshot() == after


def test_an_adopted_location_that_admits_loopback_only_is_refused(acme, nginx):
    """E5 with a location of the user's that serves another directory than
    the plugin's webroot: the first self-check misses, the files go to the
    adopted directory and the loopback self-check passes; the CA, from a
    public address, would get 403, so it is not asked."""
    from test_e2e_effective import PUBLIC, REALIP
    from test_faults import Scene
    os.makedirs(os.path.join(nginx.prefix, "www"), exist_ok=True)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name office.example;
%s    allow 127.0.0.1;
    deny all;
    location ^~ /.well-known/acme-challenge/ { root {prefix}/www; }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % REALIP)
    scene = Scene(nginx, "office.example")
    out = scene.unchanged(certbot.run("certonly", "-a", "nginx-webroot",
                                      *certbot.plugin_args(), "-d", "office.example",
                                      check=False), "keeps the CA out")
    assert f"{nginx.prefix}/sites/site.conf:7" in out  # the deny rule
    assert lab.http_get("office.example", "/.well-known/acme-challenge/x",
                        headers=PUBLIC)[0] == 403


def test_an_https_copy_for_fewer_names_keeps_the_blocks_server_name_value(acme, nginx):
    """C3 x C5: $server_name is the block's first name.  The HTTPS copy of
    a block whose certificate covers only its second name answers that name
    alone, so its own first name differs: the copy must still serve what
    the :80 block serves (nginx's value of the source block)."""
    for name, body in (("main.example", "main site\n"), ("www.main.example", "wrong\n")):
        os.makedirs(os.path.join(nginx.prefix, "srv", name), exist_ok=True)
        with open(os.path.join(nginx.prefix, "srv", name, "index.txt"), "w") as f:
            f.write(body)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name main.example www.main.example;
    root {prefix}/srv/$server_name;
    location / { try_files $uri =404; }
}
""")
    certbot.run(*args(certbot, "www.main.example"), "--no-redirect")
    assert lab.http_get("www.main.example", "/index.txt") == (200, b"main site\n")
    assert lab.https_response("www.main.example", "/index.txt") == (200, b"main site\n"), \
        site_text(nginx)
    assert nginx_warnings(nginx) == []


def test_a_dry_run_on_a_hard_linked_site_file_leaves_it_one_file(acme, nginx):
    """E4 x B: the dry run's temporary location goes into a hard-linked file
    in place and is undone in place: one inode, same bytes, same mode."""
    name = "hardlink.example"
    available = nginx.write("sites-available/app", """\
server {
    listen {http};
    server_name %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % name)
    enabled = os.path.join(nginx.prefix, "sites", "app.conf")
    os.link(available, enabled)
    os.chmod(available, 0o640)
    before = os.stat(available)
    with open(available, "rb") as f:
        original = f.read()
    nginx.start()
    certbot = lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)
    reloads = nginx.reloads()
    certbot.run("certonly", "--dry-run", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", name)
    assert nginx.reloads() - reloads == 2  # the location served, then undone
    after = os.stat(enabled)
    assert (after.st_ino, after.st_nlink, after.st_mode) == \
        (before.st_ino, 2, before.st_mode)
    with open(enabled, "rb") as f:
        assert f.read() == original


def test_a_block_that_redirects_some_requests_to_https_is_not_copied_into_a_loop(acme, nginx):
    """D2 x C5: a redirect to https for /admin only no longer counts as the
    block's redirect, so the block is not refused as redirect-only; its copy
    for HTTPS would redirect /admin to itself.  Refused, naming the line."""
    with open(os.path.join(nginx.prefix, "www", "index.txt"), "w") as f:
        f.write("the app\n")
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name loop.example other.example;
    root {prefix}/www;
    if ($request_uri ~ ^/admin) { return 301 https://$host$request_uri; }
}
""")
    proc = certbot.run(*args(certbot, "loop.example"), "--no-redirect", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert f"{nginx.prefix}/sites/site.conf:5" in out and "to themselves" in out, out
    assert "Traceback" not in out
    assert "listen {https}".replace("{https}", str(lab.HTTPS_PORT)) not in site_text(nginx)
    assert lab.http_get("loop.example", "/index.txt") == (200, b"the app\n")
    assert nginx_warnings(nginx) == []
