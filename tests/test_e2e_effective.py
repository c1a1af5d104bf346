"""End to end (real certbot, pebble and nginx): what nginx makes of a
block's challenge location, judged as nginx judges it.

- $server_name in a root is the block's first name, as nginx has it, not
  the requested host;
- an adopted alias directory is never written through a symlink, as under
  an adopted root;
- access is judged for the CA, a client from a public address, not for the
  loopback self-check: a location of the user's that keeps the CA out is
  refused before the CA is asked, and the location the plugin adds opens it.
"""
import os

import pytest

import lab
from test_faults import Scene

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]

CHALLENGE = "/.well-known/acme-challenge/"


def start_site(acme, nginx, site):
    nginx.write("sites/site.conf", site)
    nginx.start()
    return lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)


def certonly(certbot, *names, check=True):
    args = ["certonly", "-a", "nginx-webroot", *certbot.plugin_args()]
    for name in names:
        args += ["-d", name]
    return certbot.run(*args, check=check)


# nginx's $server_name: the first name of the block, lowercased, without a
# leading dot (ngx_http_core_merge_srv_conf), whichever name the request was for.
@pytest.mark.parametrize("first", ["primary.example", ".Primary.Example"])
def test_server_name_in_a_root_is_the_blocks_first_name(acme, nginx, first):
    site_dir = os.path.join(nginx.prefix, "www", "primary.example")
    os.makedirs(site_dir)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name %s www.primary.example;
    root {prefix}/www/$server_name;
    location /.well-known/acme-challenge/ { allow all; }
    location / { try_files $uri =404; }
}
""" % first)
    before = nginx.snapshot()
    proc = certonly(certbot, "www.primary.example")  # not the first name
    # Adopted, with no edit and no reload, and said where: the first name's directory.
    assert nginx.snapshot() == before and nginx.reloads() == 0
    assert os.path.join(site_dir, ".well-known", "acme-challenge") in proc.stdout + proc.stderr
    assert not os.path.exists(os.path.join(nginx.prefix, "www", "www.primary.example"))
    assert os.path.isfile(certbot.live("www.primary.example"))


def test_a_refusal_names_the_directory_the_files_went_to(acme, nginx):
    # The first name's directory, which nginx's workers (nobody) cannot read.
    site_dir = os.path.join(nginx.prefix, "www", "primary.example")
    os.makedirs(site_dir, mode=0o700)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name primary.example www.primary.example;
    root {prefix}/www/$server_name;
    location /.well-known/acme-challenge/ { allow all; }
}
""")
    scene = Scene(nginx, "www.primary.example")
    out = scene.unchanged(certonly(certbot, "www.primary.example", check=False),
                          "nginx does not serve the challenge files")
    assert "the files were written to %s/.well-known/acme-challenge\n" % site_dir in out
    assert os.listdir(site_dir) == []  # and removed


def test_a_root_named_by_server_name_captures(acme, nginx):
    # nginx's documented hosting layout: the regex that chose the block sets
    # its named captures as variables.
    os.makedirs(os.path.join(nginx.prefix, "www", "ann"))
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name ~^(?<user>[a-z]+)\\.users\\.example$;
    root {prefix}/www/$user;
    location /.well-known/acme-challenge/ { allow all; }
}
""")
    before = nginx.snapshot()
    proc = certonly(certbot, "ann.users.example")
    assert nginx.snapshot() == before and nginx.reloads() == 0
    assert os.path.join(nginx.prefix, "www", "ann", ".well-known", "acme-challenge") in \
        proc.stdout + proc.stderr


@pytest.mark.parametrize("location, link", [
    # the alias directory itself is a symlink
    ("location /.well-known/acme-challenge/ { alias {prefix}/acme-files/; }", "acme-files"),
    # a directory below the alias, named by the request path
    ("location ^~ /.well-known/ { alias {prefix}/wk/; }", "wk/acme-challenge"),
])
def test_an_adopted_alias_is_not_written_through_a_symlink(acme, nginx, location, link):
    # where the symlink leads: somewhere nginx can read (so following it works)
    outside = os.path.join(nginx.prefix, "elsewhere")
    os.mkdir(outside, 0o755)
    path = os.path.join(nginx.prefix, link)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    os.symlink(outside, path)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name alias.example;
    %s
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % location)
    scene = Scene(nginx, "alias.example")
    scene.unchanged(certonly(certbot, "alias.example", check=False),
                    f"{path} is a symlink; not writing through it")
    assert os.listdir(outside) == []


# The lab's CA validates from loopback, as the self-check does; nginx's
# realip module lets a test ask as a client from a public address
# (203.0.113.7), which is what the real CA is.
PUBLIC = {"X-Real-IP": "203.0.113.7"}
REALIP = "    set_real_ip_from 127.0.0.1;\n    real_ip_header X-Real-IP;\n"


@pytest.mark.parametrize("rules, deny_line", [
    ("allow 127.0.0.1;\n    deny all;", 7),
    ("allow 10.0.0.0/8;\n    allow 127.0.0.1;\n    deny all;", 8),
    ("allow 127.0.0.0/8;\n    deny 0.0.0.0/0;\n    deny ::/0;", 7),  # every IPv4 address
])
def test_a_challenge_location_that_admits_loopback_only_is_refused(acme, nginx, rules,
                                                                   deny_line):
    # The user's own location serves the plugin's webroot, so the loopback
    # self-check passes at once; the CA, from a public address, would get 403.
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name office.example;
%s    %s
    location ^~ /.well-known/acme-challenge/ { root {prefix}/webroot; }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (REALIP, rules))
    location_line = 7 + rules.count("\n")
    scene = Scene(nginx, "office.example")
    out = scene.unchanged(certonly(certbot, "office.example", check=False),
                          "keeps the CA out")
    assert f"{nginx.prefix}/sites/site.conf:{deny_line}" in out  # the rule that denies
    assert f"{nginx.prefix}/sites/site.conf:{location_line}" in out  # the location
    assert "allow all;" in out  # what to do
    assert lab.http_get("office.example", CHALLENGE + "x", headers=PUBLIC)[0] == 403


def test_the_location_the_plugin_adds_admits_a_public_client(acme, nginx):
    # deny 0.0.0.0/0 is every IPv4 address: the inserted location opens it,
    # and the rest of the site keeps it.
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name net.example;
%s    allow 127.0.0.1;
    deny 0.0.0.0/0;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % REALIP)
    certonly(certbot, "net.example")
    assert lab.http_get("net.example", CHALLENGE + "missing", headers=PUBLIC)[0] == 404
    assert lab.http_get("net.example", "/", headers=PUBLIC)[0] == 403
    assert lab.http_get("net.example", "/")[0] == 200  # loopback, as before
