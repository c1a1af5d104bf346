"""End to end: real certbot with this plugin, real pebble, real nginx.

Each case issues and installs a certificate, checks that every name is
served it on the HTTPS port, then renews with --force-renewal and checks
that the renewal made exactly one reload, left every config file
byte-identical, and that the new certificate was live when certbot exited.
"""
import os
import re
import subprocess
from importlib import metadata, util

import configobj
import pytest

import lab
from certbot_nginx_webroot.controllers.local import LocalNginx
from certbot_nginx_webroot import edit, build_info, probes

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(bool(lab.missing_tools()) and not os.environ.get("CI"),
                       reason=f"end-to-end tools missing: {lab.missing_tools()}"),
]


def snakeoil(nginx, name="snakeoil"):
    """A self-signed placeholder, as hand-made 443 blocks usually have."""
    cert = os.path.join(nginx.prefix, f"{name}.pem")
    key = os.path.join(nginx.prefix, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=snakeoil",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key


def start_site(acme, nginx, site):
    """nginx running with site as sites/site.conf, and a certbot for it."""
    nginx.write("sites/site.conf", site)
    nginx.start()
    return lab.Certbot(os.path.join(nginx.prefix, "certbot"), acme, nginx)


def proxy_site(name):
    return ("server {\n    listen {http};\n    server_name %s;\n"
            "    location / { proxy_pass http://127.0.0.1:{backend}; }\n}\n" % name)


def recipe_site(name):
    """The manual recipe's :80 block: its own challenge location, then the app."""
    return ("server {\n    listen {http};\n    server_name %s;\n"
            "    location ^~ /.well-known/acme-challenge/ {\n        root {prefix}/webroot;\n    }\n"
            "    location / {\n        proxy_pass http://127.0.0.1:{backend};\n    }\n}\n" % name)


def renew_is_one_reload(certbot, nginx, names):
    """A forced renewal of the lineage names[0]: one reload, no file
    changed, the new certificate served for every name when certbot exits."""
    before, reloads = nginx.snapshot(), nginx.reloads()
    previous = lab.leaf_der(certbot.live(names[0]))
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1
    assert nginx.snapshot() == before
    renewed = lab.leaf_der(certbot.live(names[0]))
    assert renewed != previous
    for name in names:
        assert lab.served_cert_der(name) == renewed, name  # live when certbot exited


def issue_then_renew(acme, nginx, site, names, *extra, check_ipv6=False):
    certbot = start_site(acme, nginx, site)
    args = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args()]
    for name in names:
        args += ["-d", name]
    certbot.run(*args, *extra)
    first = lab.leaf_der(certbot.live(names[0]))
    for name in names:
        assert lab.served_cert_der(name) == first, name
        if check_ipv6:
            assert lab.served_cert_der(name, host="::1") == first, name
    # The challenge files are cleaned up; the location stays.
    challenge_dir = os.path.join(nginx.webroot, ".well-known", "acme-challenge")
    assert not os.path.isdir(challenge_dir) or not os.listdir(challenge_dir)

    renew_is_one_reload(certbot, nginx, names)
    return certbot


def test_reverse_proxy(acme, nginx):
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name proxy.example;

    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""", ["proxy.example"], "--no-redirect")
    assert lab.http_get("proxy.example", "/")[1] == b"backend 127.0.0.1\n"
    # The HTTPS block the installer made speaks HTTP/2, in the form this nginx wants.
    assert lab.negotiated_protocol("proxy.example") == "h2"


def test_redirect_only_block_beside_a_hand_made_https_block(acme, nginx):
    cert, key = snakeoil(nginx)
    certbot = issue_then_renew(acme, nginx, """\
# the classic blog layout
server {
    listen {http};
    server_name blog.example;
    return 301 https://$host$request_uri;
}

server {
    listen {https} ssl;
    server_name blog.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""" % (cert, key), ["blog.example"], "--redirect")
    status, _ = lab.http_get("blog.example", "/some/page")
    assert status == 301
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        text = f.read()
    assert certbot.live("blog.example") in text and cert not in text
    assert text.count("server {") == 2  # the hand-made block was used, not copied


def test_try_files_then_proxy_from_a_root(acme, nginx):
    www = os.path.join(nginx.prefix, "www")
    with open(os.path.join(www, "static.txt"), "w") as f:
        f.write("static\n")
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name app.example;
    root {prefix}/www;

    location / {
        try_files $uri @proxy;
    }

    location @proxy {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""", ["app.example"], "--no-redirect")
    assert lab.http_get("app.example", "/static.txt")[1] == b"static\n"
    assert lab.http_get("app.example", "/dynamic")[1] == b"backend 127.0.0.1\n"


def test_two_names_in_two_server_blocks(acme, nginx):
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name one.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}

server {
    listen {http};
    server_name two.example;
    location / { return 200 "two\\n"; }
}
""", ["one.example", "two.example"], "--no-redirect")
    assert lab.http_get("two.example", "/")[1] == b"two\n"


def test_ipv6_listens(acme, nginx):
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    listen [::]:{http};
    server_name six.example;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""", ["six.example"], "--no-redirect", check_ipv6=True)
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        text = f.read()
    form = LocalNginx(lab.nginx_binary(), nginx.conf).build_info().http2_form
    flags = "ssl http2" if form == build_info.HTTP2_LISTEN else "ssl"  # 1.22: the listen flag
    assert "listen [::]:%d %s;" % (lab.HTTPS_PORT, flags) in text
    assert lab.negotiated_protocol("six.example", host="::1") == "h2"


def test_dry_run_reloads_nothing_once_the_location_exists(acme, nginx):
    certbot = start_site(acme, nginx, proxy_site("dry.example"))
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(), "-d", "dry.example")
    assert nginx.reloads() == 1  # the one-time insertion of the location
    before = nginx.snapshot()
    certbot.run("renew", "--dry-run", "--no-random-sleep-on-renew")
    certbot.run("renew", "--no-random-sleep-on-renew")  # not due: nothing at all
    assert nginx.reloads() == 1
    assert nginx.snapshot() == before


IF_403 = "    if ($request_method = GET) { return 403; }\n"


@pytest.mark.parametrize("site", [
    proxy_site("denied.example").replace("    location /", IF_403 + "    location /"),
    # After the location: the inserted challenge location moves it down in
    # the edited file, but the message names its line in the file as restored.
    proxy_site("denied.example").replace("; }\n}\n", "; }\n\n\n" + IF_403 + "}\n"),
], ids=["if-first", "if-last"])
def test_nginx_not_serving_the_challenge_stops_before_the_ca(acme, nginx, site):
    # A conditional server-level if that answers every GET: the plugin leaves
    # it alone, the self-check catches the 403, certbot fails without asking
    # the CA, the error names the if, and the location it inserted is gone.
    if_line = site.split("\n").index(IF_403.rstrip("\n")) + 1
    certbot = start_site(acme, nginx, site)
    before = nginx.snapshot()
    proc = certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                       "-d", "denied.example", check=False)
    out = proc.stderr + proc.stdout
    assert proc.returncode != 0
    assert "nginx does not serve the challenge files" in out and "HTTP 403" in out
    assert "server-level if at %s/sites/site.conf:%d may answer" % (nginx.prefix, if_line) in out
    assert nginx.snapshot() == before
    assert nginx.reloads() == 2  # the edit, and back to the original
    assert lab.http_get("denied.example", "/.well-known/acme-challenge/x")[0] == 403


def test_another_authenticator_with_this_installer_then_rollback(acme, nginx):
    # The manual recipe's location, served by certbot's own webroot plugin;
    # this plugin only installs.  Then `certbot rollback` undoes the install.
    certbot = start_site(acme, nginx, recipe_site("other.example"))
    original = nginx.snapshot()
    certbot.run("run", "-a", "webroot", "-w", nginx.webroot, "-i", "nginx-webroot",
                *certbot.installer_args(), "-d", "other.example", "--no-redirect")
    assert lab.served_cert_der("other.example") == lab.leaf_der(certbot.live("other.example"))
    assert nginx.reloads() == 1  # the installer's; the webroot plugin reloads nothing
    assert nginx.snapshot() != original
    certbot.run("rollback", "--installer", "nginx-webroot", *certbot.installer_args(),
                "--checkpoints", "1")
    assert nginx.snapshot() == original


def test_renewal_with_nginx_stopped_fails_clearly_and_touches_nothing(acme, nginx):
    certbot = start_site(acme, nginx, proxy_site("stopped.example"))
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "stopped.example", "--no-redirect")
    nginx.stop(remove=False)
    before = nginx.snapshot()
    proc = certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", check=False)
    assert proc.returncode != 0
    assert "nginx is not running" in proc.stdout + proc.stderr
    assert nginx.snapshot() == before
    # nothing was started behind the service manager's back
    assert not os.path.exists(os.path.join(nginx.prefix, "nginx.pid"))


def certbot_version():
    return tuple(int(part) for part in metadata.version("certbot").split(".")[:2])


def move_to_this_plugin(certbot, name, *extra):
    """The move, as docs/renewals.md gives it: `reconfigure` where certbot has it
    (2.3 and later; no new certificate), else a forced renewal.  Returns
    what the renewal configuration stores."""
    move = ["--cert-name", name, "-a", "nginx-webroot", "-i", "nginx-webroot",
            *certbot.plugin_args(), *extra]
    if certbot_version() >= (2, 3):
        certbot.run("reconfigure", *move)
    else:
        certbot.run("run", "-d", name, "--force-renewal", "--no-redirect", *move)
    stored = configobj.ConfigObj(os.path.join(
        certbot.directory, "config", "renewal", f"{name}.conf"))["renewalparams"]
    assert stored["authenticator"] == stored["installer"] == "nginx-webroot"
    return stored




def test_move_a_webroot_certificate_to_this_plugin(acme, nginx):
    # The blog recipe: a hand-made challenge location, `certonly --webroot`
    # with a reload as deploy hook, and a hand-made HTTPS block.
    certbot = start_site(acme, nginx, recipe_site("moved.example"))
    reload_hook = f"{lab.nginx_binary()} -p {nginx.prefix} -c {nginx.conf} -s reload"
    certbot.run("certonly", "--webroot", "-w", nginx.webroot, "-d", "moved.example",
                "--deploy-hook", reload_hook)
    nginx.write("sites/tls.conf", """\
server {
    listen {https} ssl;
    server_name moved.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / {
        proxy_pass http://127.0.0.1:{backend};
    }
}
""" % (certbot.live("moved.example"), certbot.live("moved.example", "privkey.pem")))
    subprocess.run(reload_hook.split(), check=True)
    assert probes.wait_until(lambda: lab.served_cert_der("moved.example")
                               == lab.leaf_der(certbot.live("moved.example")), 10)
    before = nginx.snapshot()

    stored = move_to_this_plugin(certbot, "moved.example", "--deploy-hook", "")
    assert stored["nginx_webroot_server_root"] == nginx.prefix
    assert stored["nginx_webroot_path"] == nginx.webroot
    assert not stored.get("renew_hook")  # the plugin reloads; the hook would reload again
    after = nginx.snapshot()
    tls_conf = os.path.join(nginx.prefix, "sites/tls.conf")
    if certbot_version() < (2, 3):
        # The move was a certbot run: the installer gave the hand-made HTTPS
        # block the TLS policy include, and changed nothing else.
        added = [line for line in after[tls_conf].splitlines()
                 if line not in before[tls_conf].splitlines()]
        assert [line.split()[0] for line in added] == [b"include"]
        assert added[0].endswith(b"options-ssl-nginx-webroot.conf;  # certbot-nginx-webroot")
        after[tls_conf] = before[tls_conf]
    assert after == before  # the hand-made location and lines already fit
    renew_is_one_reload(certbot, nginx, ["moved.example"])


def has_certbot_nginx():
    return util.find_spec("certbot_nginx") is not None


@pytest.mark.skipif(not has_certbot_nginx() and not os.environ.get("CI"),
                    reason="certbot's nginx plugin is not installed")
def test_move_an_nginx_plugin_certificate_to_this_plugin(acme, nginx):
    # certbot's own nginx plugin issued and installed it.
    certbot = start_site(acme, nginx, proxy_site("nginxed.example"))
    certbot.run("--nginx", "--nginx-server-root", nginx.prefix, "--nginx-ctl",
                lab.nginx_binary(), "-d", "nginxed.example", "--no-redirect")
    assert lab.served_cert_der("nginxed.example") == lab.leaf_der(
        certbot.live("nginxed.example"))

    move_to_this_plugin(certbot, "nginxed.example")
    # The move added the challenge location, once: after this, no edits.
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        site = f.read()
    # certbot's nginx plugin made the block serve both ports: one location.
    assert site.count("location ^~ /.well-known/acme-challenge/") == 1
    assert site.count("# managed by Certbot") == 5  # its lines are left alone
    assert lab.http_get("nginxed.example", "/")[1] == b"backend 127.0.0.1\n"
    renew_is_one_reload(certbot, nginx, ["nginxed.example"])


DEBIAN_PROTOCOLS = "ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;"


def accepted(name):
    return {p: lab.tls_handshake(name, p) for p in lab.TLS_PROTOCOLS}


def agrees_with_config(nginx, name, handshakes, default):
    """Each protocol is negotiated exactly when the block's effective
    ssl_protocols (per nginx -T) lists it."""
    effective = lab.effective_ssl(nginx, name, "ssl_protocols") or default
    for protocol, outcome in handshakes.items():
        wanted = lab.NGINX_NAMES[protocol]
        assert outcome == (wanted if wanted in effective else "refused"), (name, protocol)


@pytest.mark.parametrize("http_level", [DEBIAN_PROTOCOLS, ""],
                         ids=["debian-nginx.conf", "nginx.org-nginx.conf"])
def test_tls_policy_hsts_and_uir_on_the_https_blocks(acme, nginx, http_level):
    # At http level, Debian's protocols line or none (nginx.org's), and
    # nginx's default ciphers at security level 0: this nginx's OpenSSL 3
    # then accepts TLS 1.0 and 1.1 as OpenSSL 1.1.1 does.
    with open(nginx.conf) as f:
        main = f.read()
    with open(nginx.conf, "w") as f:
        f.write(main.replace("    default_type text/plain;\n", "    default_type text/plain;\n"
                             f"    {http_level}\n    ssl_ciphers HIGH:!aNULL:!MD5:@SECLEVEL=0;\n"))
    cert, key = snakeoil(nginx)
    certbot = start_site(acme, nginx, proxy_site("new.example") + """
server {
    listen {https} ssl;
    server_name made.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
    location /gone { return 404; }
}
""" % (cert, key))
    build = LocalNginx(lab.nginx_binary(), nginx.conf).build_info()
    # nginx's default when no ssl_protocols applies: TLS 1.3 only from 1.23.4.
    default = ["TLSv1", "TLSv1.1", "TLSv1.2"] + (["TLSv1.3"] if build.version >= (1, 23, 4)
                                                 else [])
    before = accepted("made.example")
    agrees_with_config(nginx, "made.example", before, default)
    alpn_before = lab.negotiated_protocol("made.example")

    names = ["new.example", "made.example"]
    proc = certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                       "-d", names[0], "-d", names[1], "--no-redirect", "--hsts", "--uir")
    assert "sets its own TLS settings" not in proc.stderr
    subprocess.run([lab.nginx_binary(), "-t", "-q", "-p", nginx.prefix, "-c", nginx.conf],
                   check=True)
    for name in names:
        assert lab.effective_ssl(nginx, name, "ssl_protocols") == ["TLSv1.2", "TLSv1.3"]
        after = accepted(name)
        agrees_with_config(nginx, name, after, default)
        assert after == {"tls1": "refused", "tls1_1": "refused",
                         "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}, name
        for path in ("/", "/gone"):  # `always`: error pages carry them too
            status, headers = lab.https_get(name, path)
            assert headers["strict-transport-security"] == "max-age=31536000", (name, path)
            assert headers["content-security-policy"] == "upgrade-insecure-requests"
    assert lab.https_get("made.example", "/gone")[0] == 404
    # HTTP/2 as before: the hand-made block's socket has no http2 flag, so on
    # nginx < 1.25.1 the new block shares it; from 1.25.1 `http2 on;` is per block.
    assert lab.negotiated_protocol("made.example") == alpn_before
    assert lab.negotiated_protocol("new.example") == (
        "h2" if build.http2_form == build_info.HTTP2_DIRECTIVE else alpn_before)

    renew_is_one_reload(certbot, nginx, names)
    # `certbot enhance` again: already there, nothing edited.
    before_files = nginx.snapshot()
    certbot.run("enhance", "-i", "nginx-webroot", "--cert-name", names[0], "--hsts", "--uir",
                *certbot.installer_args())
    assert nginx.snapshot() == before_files
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        assert f.read().count("Strict-Transport-Security") == 2  # one per HTTPS block
    proc = certbot.run("enhance", "-i", "nginx-webroot", "--cert-name", names[0], "--staple-ocsp",
                       *certbot.installer_args(), check=False)
    assert proc.returncode != 0 and "ended OCSP" in proc.stdout + proc.stderr
    assert nginx.snapshot() == before_files


def test_enhance_adds_hsts_to_an_installed_certificate(acme, nginx):
    certbot = start_site(acme, nginx, proxy_site("later.example"))
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "later.example", "--no-redirect")
    assert "strict-transport-security" not in lab.https_get("later.example")[1]
    reloads = nginx.reloads()
    certbot.run("enhance", "-i", "nginx-webroot", "--cert-name", "later.example", "--hsts",
                *certbot.installer_args())
    assert nginx.reloads() == reloads + 1
    assert lab.https_get("later.example")[1]["strict-transport-security"] == "max-age=31536000"


def test_location_choice_agrees_with_nginx(nginx):
    # The config model's choice of location for a challenge URL, asked of
    # nginx itself: every location answers with its own arguments.
    from test_effective import LOCATION_CASES, URI
    servers, names = [], {}

    def tag(m):
        names[f"L{len(names)}"] = m.group(1)
        return 'location %s { return 200 "L%d";' % (m.group(1), len(names) - 1)
    for i, (locations, _) in enumerate(LOCATION_CASES):
        tagged = re.sub(r"location ([^{]+?) ?\{", tag, locations)
        servers.append("server { listen {http}; server_name case%d.test; %s }\n" % (i, tagged))
    nginx.write("sites/cases.conf", "".join(servers))
    nginx.start()
    for i, (locations, expected) in enumerate(LOCATION_CASES):
        status, body = lab.http_get(f"case{i}.test", URI)
        answer = names[body.decode()] if status == 200 else None
        assert answer == (expected[-1] if expected else None), locations


# -- layouts from real sites (issue 11) -------------------------------------

def site_text(nginx):
    with open(os.path.join(nginx.prefix, "sites/site.conf")) as f:
        return f.read()


def write_file(nginx, relpath, text):
    path = os.path.join(nginx.prefix, relpath)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(os.path.dirname(path), 0o755)
    return path


ADOPTED = {
    # the seed recipe done by hand, into a directory of its own, and its
    # hand-made HTTPS block (no challenge location needed there)
    "recipe": ("""\
server {
    listen {http};
    server_name recipe.example;
    location ^~ /.well-known/acme-challenge/ {
        root {prefix}/www/well-known;
    }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}

server {
    listen {https} ssl;
    server_name recipe.example;
    ssl_certificate {prefix}/snakeoil.pem;
    ssl_certificate_key {prefix}/snakeoil.key;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""", "www/well-known"),
    # Mastodon: a plain prefix location under the server's root
    "mastodon": ("""\
server {
    listen {http};
    server_name social.example;
    root {prefix}/www/mastodon/public;
    location /.well-known/acme-challenge/ { allow all; }
    location / { try_files $uri @proxy; }
    location @proxy { proxy_pass http://127.0.0.1:{backend}; }
}
""", "www/mastodon/public"),
    # Nextcloud: nested in its own ^~ /.well-known, root from the http level
    "nextcloud": ("""\
root {prefix}/www/nextcloud;
server {
    listen {http};
    server_name cloud.example;
    location ^~ /.well-known {
        location = /.well-known/carddav { return 301 /remote.php/dav/; }
        location /.well-known/acme-challenge { try_files $uri $uri/ =404; }
        return 301 /index.php$request_uri;
    }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""", "www/nextcloud"),
    # an alias in a location of the include's own
    "alias": ("""\
server {
    listen {http};
    server_name alias.example;
    include {prefix}/snippets/acme.inc;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""", "acme-files"),
}


@pytest.mark.parametrize("kind", sorted(ADOPTED))
def test_an_existing_challenge_location_is_adopted(acme, nginx, kind):
    site, served = ADOPTED[kind]
    name = re.search(r"server_name (\S+);", site).group(1)
    write_file(nginx, "snippets/acme.inc", nginx.fill(
        "location /.well-known/acme-challenge/ { alias {prefix}/acme-files/; }\n"))
    for directory in ("www/well-known", "www/mastodon/public", "www/nextcloud", "acme-files"):
        os.makedirs(os.path.join(nginx.prefix, directory), mode=0o755, exist_ok=True)
    snakeoil(nginx)
    certbot = start_site(acme, nginx, site)
    before = nginx.snapshot()
    # certonly: no edit, no reload; the challenge files went where nginx serves them.
    proc = certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(), "-d", name)
    assert nginx.snapshot() == before and nginx.reloads() == 0
    directory = os.path.join(nginx.prefix, served)
    assert directory in proc.stdout + proc.stderr  # said in one line
    assert not os.path.exists(os.path.join(nginx.webroot, ".well-known"))
    stored = configobj.ConfigObj(os.path.join(
        certbot.directory, "config", "renewal", f"{name}.conf"))["renewalparams"]
    if served.startswith("www/"):  # a root: the renewal finds it served without parsing
        assert stored["nginx_webroot_path"] == directory
    # Renewals from the renewal conf, with nothing added: still no edit or reload.
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.snapshot() == before and nginx.reloads() == 0
    assert lab.http_get(name, "/")[0] in (200, 301)


def test_blocks_serving_different_directories_are_each_served(acme, nginx):
    for directory in ("www/one", "www/two"):
        os.makedirs(os.path.join(nginx.prefix, directory), mode=0o755)
    certbot = start_site(acme, nginx, "".join("""\
server {
    listen {http};
    server_name %s.example;
    location ^~ /.well-known/acme-challenge/ { root {prefix}/www/%s; }
}
""" % (n, n) for n in ("one", "two")))
    before = nginx.snapshot()
    certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", "one.example", "-d", "two.example")
    assert nginx.snapshot() == before and nginx.reloads() == 0


def test_a_challenge_location_that_proxies_is_refused_by_file_and_line(acme, nginx):
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    server_name proxied.example;
    location /.well-known/acme-challenge/ { proxy_pass http://127.0.0.1:{backend}; }
}
""")
    before = nginx.snapshot()
    proc = certbot.run("certonly", "-a", "nginx-webroot", *certbot.plugin_args(),
                       "-d", "proxied.example", check=False)
    assert proc.returncode != 0
    assert "%s/sites/site.conf:4" % nginx.prefix in proc.stdout + proc.stderr
    assert "proxy_pass" in proc.stdout + proc.stderr
    assert nginx.snapshot() == before and nginx.reloads() == 0


PROTECTED = {
    "auth_basic": ('auth_basic "staging";\n    auth_basic_user_file {prefix}/htpasswd;', 401),
    "allow-deny": ("allow 192.0.2.1;\n    deny all;", 403),
    "auth_request": ("auth_request /auth;\n    location = /auth { internal; return 401; }", 401),
    "satisfy-any": ('satisfy any;\n    allow 192.0.2.1;\n    deny all;\n'
                    '    auth_basic "staging";\n    auth_basic_user_file {prefix}/htpasswd;', 401),
}


@pytest.mark.parametrize("kind", sorted(PROTECTED))
def test_a_protected_site_gets_its_certificate_and_stays_protected(acme, nginx, kind):
    protection, status = PROTECTED[kind]
    write_file(nginx, "htpasswd", "user:$apr1$lL0pWWmT$Q1m4M/UdpDBXK5Ql1b.bV/\n")
    name = "staging.example"
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name %s;
    %s
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (name, protection), [name], "--no-redirect")
    assert lab.http_get(name, "/")[0] == status
    assert lab.https_response(name, "/")[0] == status  # the HTTPS block the installer made
    assert lab.http_get(name, "/.well-known/acme-challenge/missing")[0] == 404  # opened


def test_a_redirect_only_block_with_included_locations_keeps_redirecting_them(acme, nginx):
    cert, key = snakeoil(nginx)
    write_file(nginx, "snippets/api.inc",
               "location /api/ { return 200 \"api over plain http\\n\"; }\n")
    issue_then_renew(acme, nginx, """\
server {
    listen {http};
    server_name shop.example;
    include {prefix}/snippets/api.inc;
    return 301 https://$host$request_uri;
}

server {
    listen {https} ssl;
    server_name shop.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key), ["shop.example"], "--redirect")
    for path in ("/", "/api/x", "/.well-known/", "/.well-known/acme-challenge/../../api/x"):
        assert lab.http_get("shop.example", path)[0] == 301, path
    text = site_text(nginx)
    assert "    return 301 https://$host$request_uri;\n" in text  # left where it was
    assert "location / {" not in text.split("server {")[1]


def test_a_conditional_if_is_left_alone(acme, nginx):
    issue_then_renew(acme, nginx, """\
map $http_user_agent $bad_bot {
    default 0;
    ~*evilbot 1;
}
server {
    listen {http};
    server_name guarded.example;
    if ($bad_bot) { return 403; }
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""", ["guarded.example"], "--no-redirect")
    text = site_text(nginx)
    assert "    if ($bad_bot) { return 403; }\n" in text and "break;" not in text
    assert lab.http_get("guarded.example", "/", headers={"User-Agent": "EvilBot"})[0] == 403
    assert lab.http_get("guarded.example", "/")[0] == 200


def test_a_catch_all_redirect_is_the_redirect_in_place(acme, nginx):
    cert, key = snakeoil(nginx)
    certbot = issue_then_renew(acme, nginx, """\
server {
    listen {http} default_server;
    server_name _;
    return 301 https://$host$request_uri;
}

server {
    listen {https} ssl;
    server_name a.test;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key), ["a.test"], "--redirect")
    assert certbot  # certbot exited 0 (issue_then_renew checks)
    assert "if ($host" not in site_text(nginx)
    assert lab.http_get("other.test", "/")[0] == 301


def test_a_stock_default_site_gets_a_redirect_for_the_name_only(acme, nginx):
    # Debian's default site answers every name; non-interactive certbot asks
    # for the redirect by default.
    os.makedirs(os.path.join(nginx.prefix, "www/html"), exist_ok=True)
    write_file(nginx, "www/html/index.html", "welcome\n")
    issue_then_renew(acme, nginx, """\
server {
    listen {http} default_server;
    root {prefix}/www/html;
    index index.html;
    server_name _;
    location / {
        try_files $uri $uri/ =404;
    }
}
""", ["stock.example"])
    assert lab.http_get("stock.example", "/")[0] == 301
    assert lab.http_get("other.example", "/") == (200, b"welcome\n")
    assert lab.https_response("stock.example", "/") == (200, b"welcome\n")


def test_renewal_from_a_plain_root_crontab(acme, nginx, tmp_path):
    # cron: cwd /, PATH=/usr/bin:/bin (nginx is in /usr/sbin), `certbot -q renew`.
    if lab.nginx_binary() != "/usr/sbin/nginx":
        pytest.skip("the crontab PATH finds only the distro's nginx")
    certbot = start_site(acme, nginx, proxy_site("cron.example"))
    # Relative directories, from the nginx prefix; nginx found on PATH.
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", "-d", "cron.example",
                "--nginx-webroot-server-root", ".", "--nginx-webroot-path", "webroot",
                "--no-redirect", cwd=nginx.prefix)
    stored = configobj.ConfigObj(os.path.join(
        certbot.directory, "config", "renewal", "cron.example.conf"))["renewalparams"]
    assert stored["nginx_webroot_server_root"] == nginx.prefix
    assert stored["nginx_webroot_path"] == nginx.webroot
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("-q", "renew", "--force-renewal", "--no-random-sleep-on-renew", cwd="/",
                env={"PATH": "/usr/bin:/bin", "HOME": "/root", "SHELL": "/bin/sh"})
    assert nginx.reloads() - reloads == 1 and nginx.snapshot() == before
    assert lab.served_cert_der("cron.example") == lab.leaf_der(certbot.live("cron.example"))


def user_lines(text):
    """The lines a user wrote: every line the plugin adds is marked."""
    return [line for line in text.splitlines() if edit.MARK not in line and line.strip()]


def test_https_goes_into_the_site_not_the_ipv6_default(acme, nginx):
    os.makedirs(os.path.join(nginx.prefix, "www/html"), exist_ok=True)
    write_file(nginx, "www/html/index.html", "Welcome to nginx!\n")
    site = """\
server {
    listen [::]:{http} default_server;
    root {prefix}/www/html;
    index index.html;
    server_name _;
}

server {
    listen {http};
    server_name v4.example;
    location / { proxy_pass http://127.0.0.1:{backend}; }
} """  # the file's last line ends with a space
    issue_then_renew(acme, nginx, site, ["v4.example"], "--no-redirect")
    assert lab.https_response("v4.example", "/") == (200, b"backend 127.0.0.1\n")
    text = site_text(nginx)
    # The site's block serves HTTPS itself (issue 20 C5; it was copied): the
    # file's last line is still "} " without a newline.
    assert user_lines(text) == user_lines(nginx.fill(site)) and text.endswith("\n} ")
    assert text.count("server {") == 2


def test_a_shared_block_redirects_and_serves_only_covered_names(acme, nginx):
    certbot = issue_then_renew(acme, nginx, proxy_site("a.example legacy.example"),
                               ["a.example"], "--redirect")
    assert lab.http_get("a.example", "/")[0] == 301
    assert lab.http_get("legacy.example", "/") == (200, b"backend 127.0.0.1\n")
    text = site_text(nginx)
    assert f"server_name a.example;  {edit.MARK}" in text  # the new HTTPS block
    # A second lineage for the other name gets its own HTTPS block; both work.
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "legacy.example", "--redirect")
    for name in ("a.example", "legacy.example"):
        assert lab.served_cert_der(name) == lab.leaf_der(certbot.live(name)), name
        assert lab.http_get(name, "/")[0] == 301
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(
        proxy_site("a.example legacy.example")))


def test_replacing_a_certificate_another_lineage_needs_is_refused(acme, nginx):
    cert, key = snakeoil(nginx)
    certbot = start_site(acme, nginx, """\
server {
    listen {http};
    listen {https} ssl;
    server_name a.example b.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key))
    args = ["-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(), "--no-redirect"]
    certbot.run(*args, "-d", "a.example")
    before = nginx.snapshot()
    proc = certbot.run(*args, "-d", "b.example", check=False)
    assert proc.returncode != 0
    assert "serves a.example with" in proc.stdout + proc.stderr
    assert "-d a.example -d b.example" in proc.stdout + proc.stderr
    assert nginx.snapshot() == before
    assert lab.served_cert_der("a.example") == lab.leaf_der(certbot.live("a.example"))


def test_a_name_that_redirects_to_another_gets_an_https_block_that_does_too(acme, nginx):
    site = """\
server {
    listen {http};
    server_name old.example;
    return 301 https://new.example$request_uri;
}
"""
    issue_then_renew(acme, nginx, site, ["old.example"], "--redirect")
    status, _ = lab.https_response("old.example", "/page")
    assert status == 301
    assert user_lines(site_text(nginx)) == user_lines(nginx.fill(site))


def test_https_on_another_port_gets_the_certificate_there(acme, nginx):
    cert, key = snakeoil(nginx)
    other = lab.HTTPS_PORT + 1
    site = """\
server {
    listen {http};
    server_name tls.example;
    return 301 https://$host:%d$request_uri;
}

server {
    listen %d ssl;
    server_name tls.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (other, other, cert, key)
    certbot = start_site(acme, nginx, site)
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                "-d", "tls.example", "--redirect")
    issued = lab.leaf_der(certbot.live("tls.example"))
    assert lab.served_cert_der("tls.example", port=other) == issued
    text = site_text(nginx)
    assert str(lab.HTTPS_PORT) not in text  # no new block on --https-port
    before, reloads = nginx.snapshot(), nginx.reloads()
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    assert nginx.reloads() - reloads == 1 and nginx.snapshot() == before
    renewed = lab.leaf_der(certbot.live("tls.example"))
    assert renewed != issued and lab.served_cert_der("tls.example", port=other) == renewed


def test_a_block_on_both_ports_redirects_plain_http_only(acme, nginx):
    cert, key = snakeoil(nginx)
    site = """\
server {
    listen {http};
    listen {https} ssl;
    server_name mixed.example other.example;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { proxy_pass http://127.0.0.1:{backend}; }
}
""" % (cert, key)
    issue_then_renew(acme, nginx, site, ["mixed.example"], "--redirect")
    assert lab.http_get("mixed.example", "/page")[0] == 301
    assert lab.https_response("mixed.example", "/page") == (200, b"backend 127.0.0.1\n")
    assert lab.http_get("mixed.example", "/.well-known/acme-challenge/x")[0] == 404
    assert lab.http_get("other.example", "/page")[0] == 200  # not covered: not redirected
    # Only the certificate lines changed (marked now); every other user line stays.
    assert user_lines(site_text(nginx)) == [line for line in user_lines(nginx.fill(site))
                                            if "ssl_certificate" not in line]
