"""The TLS policy snippet and the security headers (tls.py), on parsed
configs; `nginx -t` judges the results where nginx is installed."""
import hashlib
import logging
import os
import shutil
import subprocess

import pytest
from certbot import errors

from certbot_nginx_webroot import edit, parser, sites, tls
from certbot_nginx_webroot.config import Config
from test_plugin import fake, make_plugin, write_conf  # noqa: F401 - fake is a fixture

import lab


def load(tmp_path, site, http=""):
    root = tmp_path / "nginx"
    (root / "sites").mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(
        "events {}\nhttp {\n%s    include sites/*.conf;\n}\n" % http)
    (root / "sites" / "a.conf").write_text(site)
    return Config.load(str(root / "nginx.conf"))


def text(config, name="a.conf"):
    return parser.dump(config.files[os.path.join(config.prefix, "sites", name)])


TLS_SITE = """server {
    listen 443 ssl;
    server_name a.example;
    ssl_certificate /le/fullchain.pem;
    ssl_certificate_key /le/key.pem;
%s    location / { return 200; }
}
"""


def test_shipped_snippet_is_a_shipped_version():
    # The hash of the current snippet must be listed, or an unedited copy
    # of it could never be updated by the next release.
    with open(tls.SHIPPED_SNIPPET, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == tls.SHIPPED_HASHES[-1]


def test_snippet_is_the_intermediate_policy_without_stapling():
    nodes = {n.name: n.args for n in parser.parse_file(tls.SHIPPED_SNIPPET).children}
    assert nodes["ssl_protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert "DHE-" not in nodes["ssl_ciphers"][0].replace("ECDHE-", "")
    assert nodes["ssl_session_tickets"] == ["off"]
    assert nodes["ssl_prefer_server_ciphers"] == ["off"]
    assert not any(name.startswith("ssl_stapling") for name in nodes)
    assert tls.policy_directives() == set(nodes)


def test_include_goes_after_the_certificate_once(tmp_path):
    config = load(tmp_path, TLS_SITE % "")
    server = config.server_blocks()[0]
    snippet = str(tmp_path / tls.SNIPPET_NAME)
    shutil.copyfile(tls.SHIPPED_SNIPPET, snippet)
    assert tls.ensure_policy(config, server, snippet) is None
    assert tls.ensure_policy(config, server, snippet) is None
    assert text(config) == TLS_SITE % ("    include %s;  %s\n" % (snippet, edit.MARK))


@pytest.mark.parametrize("own", [
    "    ssl_protocols TLSv1.2;\n",
    "    ssl_ciphers HIGH;\n",
    "    ssl_session_cache shared:SSL:20m;\n",  # nginx would refuse it twice in one block
    "    include /etc/letsencrypt/options-ssl-nginx.conf;\n",  # certbot's nginx plugin's
])
def test_a_block_with_its_own_policy_keeps_it_and_says_so(tmp_path, own):
    le = tmp_path / "etc"
    le.mkdir()
    own = own.replace("/etc/letsencrypt", str(le))
    (le / "options-ssl-nginx.conf").write_text("ssl_protocols TLSv1.2 TLSv1.3;\n")
    config = load(tmp_path, TLS_SITE % own)
    before = text(config)
    note = tls.ensure_policy(config, config.server_blocks()[0], "/le/" + tls.SNIPPET_NAME)
    assert "sets its own TLS settings" in note and "a.conf:" in note
    assert text(config) == before and not config.changed


def test_http_level_policy_is_overridden(tmp_path):
    # Debian's nginx.conf sets TLSv1 and TLSv1.1 at http level: not the block's own.
    config = load(tmp_path, TLS_SITE % "",
                  http="    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n")
    assert tls.ensure_policy(config, config.server_blocks()[0], "/x/" + tls.SNIPPET_NAME) is None
    assert "include /x/" + tls.SNIPPET_NAME in text(config)


def test_https_servers_are_the_tls_blocks_of_the_name(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example; }\n"
                  + TLS_SITE % "" + TLS_SITE.replace("443 ssl", "8443 ssl") % ""
                  + "server { listen 443 ssl default_server; server_name _; }\n")
    found = tls.https_servers(config, "a.example", 443)
    assert [n.line for n in found] == [2, 9]


HSTS = 'add_header Strict-Transport-Security "max-age=31536000" always;  ' + edit.MARK


def test_header_added_once_with_always(tmp_path):
    config = load(tmp_path, TLS_SITE % "")
    server = config.server_blocks()[0]
    assert tls.ensure_header(config, server, "Strict-Transport-Security") == (True, [])
    assert tls.ensure_header(config, server, "Strict-Transport-Security") == (False, [])
    assert text(config) == TLS_SITE % ("    %s\n" % HSTS)
    assert tls.ensure_header(config, server, "Upgrade-Insecure-Requests")[0]
    assert 'add_header Content-Security-Policy "upgrade-insecure-requests" always;' \
        in text(config)


def test_header_reaches_locations_that_set_their_own_add_header(tmp_path):
    site = TLS_SITE.replace("    location / { return 200; }\n", """\
    location / {
        add_header X-Frame-Options DENY;
        location /api/ { add_header Cache-Control no-store; }
    }
    location /plain/ { }
""") % ""
    config = load(tmp_path, site)
    tls.ensure_header(config, config.server_blocks()[0], "Strict-Transport-Security")
    out = text(config)
    # server level, location / and its nested location; not /plain/, which inherits
    assert out.count("Strict-Transport-Security") == 3
    assert "location /plain/ { }" in out


def test_http_level_headers_are_kept_when_the_server_gets_its_first(tmp_path):
    config = load(tmp_path, TLS_SITE % "", http="    add_header X-Content-Type-Options nosniff;\n")
    tls.ensure_header(config, config.server_blocks()[0], "Strict-Transport-Security")
    out = text(config)
    assert out.index("add_header X-Content-Type-Options nosniff;  " + edit.MARK) \
        < out.index("Strict-Transport-Security")


def test_location_in_a_shared_include_is_reported_not_edited(tmp_path):
    root = tmp_path / "nginx"
    (root / "snippets").mkdir(parents=True)
    (root / "snippets" / "static.conf").write_text(
        "location /static/ { add_header Cache-Control public; }\n")
    config = load(tmp_path, TLS_SITE % "    include snippets/static.conf;\n")
    added, skipped = tls.ensure_header(config, config.server_blocks()[0],
                                       "Strict-Transport-Security")
    assert added and len(skipped) == 1 and "static.conf:1" in skipped[0]
    assert "static.conf" not in "".join(config.changed)


def test_unknown_header_is_refused(tmp_path):
    config = load(tmp_path, TLS_SITE % "")
    with pytest.raises(sites.SiteError):
        tls.ensure_header(config, config.server_blocks()[0], "X-Nothing")


# -- the plugin glue ------------------------------------------------------

PROXY = "server {\n    listen 80;\n    server_name a.example;\n    location / { return 200; }\n}\n"


def test_snippet_is_installed_updated_and_an_edited_one_warned_about_once(
        tmp_path, fake, monkeypatch, caplog):
    write_conf(tmp_path, {"a.conf": PROXY})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    installed = tmp_path / "le" / tls.SNIPPET_NAME
    with open(tls.SHIPPED_SNIPPET, "rb") as f:
        assert installed.read_bytes() == f.read()
    # A new release ships a new version: an unedited old one is replaced.
    new = tmp_path / "new.conf"
    new.write_text("ssl_protocols TLSv1.3;\n")
    new_hash = hashlib.sha256(new.read_bytes()).hexdigest()
    monkeypatch.setattr(tls, "SHIPPED_SNIPPET", str(new))
    monkeypatch.setattr(tls, "SHIPPED_HASHES", tls.SHIPPED_HASHES + (new_hash,))
    inst.prepare()
    assert installed.read_text() == "ssl_protocols TLSv1.3;\n"
    # An edited one stays, with one warning for that version, not one per run.
    installed.write_text("ssl_protocols TLSv1.2 TLSv1.3; # mine\n")
    newer = tmp_path / "newer.conf"
    newer.write_text("ssl_protocols TLSv1.3; # newer\n")
    monkeypatch.setattr(tls, "SHIPPED_SNIPPET", str(newer))
    monkeypatch.setattr(tls, "SHIPPED_HASHES", tls.SHIPPED_HASHES + (
        hashlib.sha256(newer.read_bytes()).hexdigest(),))
    with caplog.at_level(logging.WARNING):
        inst.prepare()
        inst.prepare()
    assert installed.read_text() == "ssl_protocols TLSv1.2 TLSv1.3; # mine\n"
    assert sum("manually modified" in r.getMessage() for r in caplog.records) == 1


def test_prepare_does_not_create_the_snippet(tmp_path, fake):
    write_conf(tmp_path, {"a.conf": PROXY})
    make_plugin(tmp_path).prepare()
    assert not (tmp_path / "le" / tls.SNIPPET_NAME).exists()


def test_hsts_and_uir_enhancements(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    assert "ensure-http-header" in inst.supported_enhancements()
    inst.enhance("a.example", "ensure-http-header", "Strict-Transport-Security")
    inst.enhance("a.example", "ensure-http-header", "Upgrade-Insecure-Requests")
    with pytest.raises(errors.PluginEnhancementAlreadyPresent):
        inst.enhance("a.example", "ensure-http-header", "Strict-Transport-Security")
    inst.save("enhance")
    # The :80 block serves HTTPS itself now (browsers ignore HSTS over plain
    # HTTP, as they do in certbot's own plugin's shared blocks).
    text = (root / "sites/a.conf").read_text()
    assert text.count("server {") == 1 and text.count("add_header") == 2


def test_staple_ocsp_is_refused_with_the_reason(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    inst = make_plugin(tmp_path)
    with pytest.raises(errors.PluginError, match="ended OCSP"):
        inst.enhance("a.example", "staple-ocsp", "/le/chain.pem")
    assert "staple" not in (root / "sites/a.conf").read_text()


@pytest.mark.skipif(not os.path.exists(lab.nginx_binary()), reason="nginx is not installed")
def test_nginx_accepts_the_snippet_headers_and_copied_http_headers(tmp_path):
    cert = tmp_path / "c.pem"
    key = tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=x",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    snippet = tmp_path / tls.SNIPPET_NAME
    shutil.copyfile(tls.SHIPPED_SNIPPET, snippet)
    site = (TLS_SITE % "").replace("/le/fullchain.pem", str(cert)).replace(
        "/le/key.pem", str(key))
    # Two blocks share the session cache zone; Debian's http-level lines stay.
    config = load(tmp_path, site + site.replace("a.example", "b.example"),
                  http="    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n"
                       "    ssl_prefer_server_ciphers on;\n    add_header X-A a;\n")
    for server in config.server_blocks():
        tls.ensure_policy(config, server, str(snippet))
        tls.ensure_header(config, server, "Strict-Transport-Security")
        tls.ensure_header(config, server, "Upgrade-Insecure-Requests")
    config.save()
    main = tmp_path / "nginx" / "nginx.conf"
    main.write_text(main.read_text().replace("events {}", "pid %s/nginx.pid;\nerror_log "
                                             "stderr;\nevents {}" % tmp_path))
    proc = subprocess.run([lab.nginx_binary(), "-t", "-p", str(tmp_path), "-c", str(main)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "warn" not in proc.stderr, proc.stderr


def test_a_block_keeping_its_policy_is_told_once_for_all_its_names(tmp_path, fake, caplog):
    root = write_conf(tmp_path, {"a.conf": PROXY + (
        "server {\n    listen 443 ssl;\n    server_name a.example b.example;\n"
        "    ssl_protocols TLSv1.2 TLSv1.3;\n}\n")})
    inst = make_plugin(tmp_path)
    with caplog.at_level(logging.WARNING):
        for name in ("a.example", "b.example"):
            inst.deploy_cert(name, "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    notes = [r.getMessage() for r in caplog.records if "own TLS settings" in r.getMessage()]
    assert len(notes) == 1 and "a.conf:6" in notes[0] and "ssl_protocols at" in notes[0]
    inst.save("deploy")
    assert tls.SNIPPET_NAME not in (root / "sites/a.conf").read_text()
