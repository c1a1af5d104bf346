"""The certbot plugin, with nginx faked (the end-to-end tests use a real one).

The fake nginx serves a challenge file only from a server block whose saved
config holds the challenge location, so these tests see what the plugin
wrote, not what it meant to write.
"""
import http.client
import os
import subprocess
import sys
import types

import pytest
from acme import challenges
from certbot import errors

from certbot_nginx_webroot import (
    build_info, certificate_lines, challenge_location, edit, own_server, plugin, probes, sites,
    tls)
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.flows import authenticate, batch, golive, owed
from certbot_nginx_webroot.controllers import local as nginxctl
from certbot_nginx_webroot.config import Config


def nginx_v(version, http2):
    return (f"nginx version: nginx/{version}\nbuilt with OpenSSL 3.0.17\n"
            "configure arguments: --prefix=/usr/share/nginx --with-http_ssl_module"
            + (" --with-http_v2_module\n" if http2 else "\n"))


class FakeNginx:
    """nginx and the network, faked.  The plugin is handed it as its probes
    (net) and, through a FakeController, as its nginx (see make_plugin).
    Its probes are the real ones but fetch; a test sets another on it."""

    def __init__(self, conf_dir):
        self.conf_dir = conf_dir
        self.tests = 0
        self.reloads = 0
        self.fail_test = None  # nginx -t fails once the plugin edited a file
        self.broken = None  # nginx -t fails whatever is on disk
        self.serving = ""  # config text loaded at the last reload
        self.running = True
        self.version_output = nginx_v("1.22.1", http2=True)  # what `nginx -V` prints
        self.proxy_protocol_ports = set()  # drop a connection without a PROXY header
        self.served_certificate = probes.served_certificate
        self.first_certificate_der = probes.first_certificate_der
        self.is_local_address = probes.is_local_address

    def test(self, *_):
        self.tests += 1
        if self.broken:
            raise NginxError(self.broken)
        if self.fail_test and edit.MARK in self._loaded():
            raise NginxError(self.fail_test)

    def master_pid(self, *_):
        if not self.running:
            raise NotRunning("nginx is not running (no live master in pid file x)")
        return 1

    def reload(self, *_):
        self.reloads += 1
        self.serving = self._loaded()

    def _loaded(self):
        text = ""
        for d, _, files in os.walk(self.conf_dir):
            for name in files:
                with open(os.path.join(d, name), errors="replace") as f:
                    text += f.read()
        return text

    def fetch(self, host, addr, port, path, timeout=5.0, proxy_protocol=False):
        return self.serve(host, addr, port, path, timeout, proxy_protocol)

    def serve(self, host, addr, port, path, timeout=5.0, proxy_protocol=False):
        if port in self.proxy_protocol_ports and not proxy_protocol:
            raise http.client.RemoteDisconnected("Remote end closed connection without response")
        if "acme-challenge" not in self.serving:
            return 404, b"not found"
        root = self.serving.split("root ", 1)[1].split(";", 1)[0]
        try:
            with open(os.path.join(root, path.lstrip("/")), "rb") as f:
                return 200, f.read()
        except OSError:
            return 404, b""


class FakeController(nginxctl.LocalNginx):
    """The local controller with the process control of a FakeNginx."""

    def __init__(self, fake, ctl, conf_path):
        super().__init__(ctl, conf_path)
        self.fake = fake

    def binary(self):
        return "/usr/sbin/nginx"

    def build_info(self):
        return build_info.parse_build_info(self.fake.version_output)

    def test(self):
        self.fake.test()

    def reload(self, timeout=30.0):
        self.fake.reload()

    def master_pid(self):
        return self.fake.master_pid()


FAKES = {}  # tmp_path -> the FakeNginx of the test using it


def new_process():
    """What a new certbot process starts with: no batch, no state read."""
    batch.BATCH.clear()
    owed.reset()


def make_plugin(tmp_path, **conf):
    values = dict(
        nginx_webroot_server_root=str(tmp_path / "nginx"),
        nginx_webroot_ctl="nginx", nginx_webroot_path=str(tmp_path / "webroot"),
        http01_port=80, https_port=443, config_dir=str(tmp_path / "le"),
        work_dir=str(tmp_path / "work"), backup_dir=str(tmp_path / "work/backups"),
        temp_checkpoint_dir=str(tmp_path / "work/temp"),
        in_progress_dir=str(tmp_path / "work/progress"), strict_permissions=False,
        dry_run=False)
    values.update(conf)
    fake = FAKES.get(str(tmp_path))
    handed = {} if fake is None else dict(net=fake, controller=FakeController(
        fake, values["nginx_webroot_ctl"],
        os.path.join(values["nginx_webroot_server_root"], "nginx.conf")))
    return plugin.NginxWebroot(types.SimpleNamespace(**values), "nginx-webroot", **handed)


def write_conf(tmp_path, sites, main=None):
    root = tmp_path / "nginx"
    (root / "sites").mkdir(parents=True, exist_ok=True)
    (root / "nginx.conf").write_text(main or "events {}\nhttp {\n    include sites/*.conf;\n}\n")
    for name, text in sites.items():
        (root / "sites" / name).write_text(text)
    return root


def snapshot(root):
    return {os.path.join(d, f): open(os.path.join(d, f), "rb").read()
            for d, _, fs in os.walk(root) for f in fs}



def achall(name, n=1):
    chall = challenges.HTTP01(token=bytes([n]) * 16)
    return types.SimpleNamespace(
        identifier=types.SimpleNamespace(value=name), chall=chall,
        response_and_validation=lambda: ("response-" + name, f"validation-{name}-{n}"))


PROXY = """server {
    listen 80;
    server_name a.example;
    location / {
        proxy_pass http://127.0.0.1:8080;
    }
}
"""


@pytest.fixture
def fake(tmp_path):
    FAKES[str(tmp_path)] = FakeNginx(str(tmp_path / "nginx"))
    yield FAKES[str(tmp_path)]
    del FAKES[str(tmp_path)]


def test_first_run_inserts_the_location_once_and_reloads_once(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    auth = make_plugin(tmp_path)
    assert auth.perform([achall("a.example")]) == ["response-a.example"]
    assert (fake.tests, fake.reloads) == (2, 1)  # nginx -t before and after the edit
    text = (root / "sites/a.conf").read_text()
    assert text.count("location ^~ /.well-known/acme-challenge/ {  " + edit.MARK) == 1
    assert text.startswith("server {\n    listen 80;\n    server_name a.example;\n"
                           "    location ^~ /.well-known")
    assert text.endswith("    location / {\n        proxy_pass http://127.0.0.1:8080;\n"
                         "    }\n}\n")
    token_file = tmp_path / "webroot/.well-known/acme-challenge" / \
        challenges.HTTP01(token=b"\x01" * 16).encode("token")
    assert oct(os.stat(token_file).st_mode & 0o777) == "0o644"
    auth.cleanup([])
    assert not (tmp_path / "webroot/.well-known").exists()


def test_renewal_needs_no_parse_edit_or_reload(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    make_plugin(tmp_path).perform([achall("a.example")])
    # a file elsewhere that our parser cannot read must not matter now
    (root / "sites/zz-broken.conf").write_text("server {\n    listen 81\n")
    before = snapshot(root)
    auth = make_plugin(tmp_path)
    auth.perform([achall("a.example", 2)])
    assert (fake.tests, fake.reloads) == (2, 1)  # still only the first run's
    assert not auth._run.parsed  # never parsed
    assert snapshot(root) == before


def test_failing_nginx_test_restores_every_file(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    fake.fail_test = "nginx: [emerg] something in /etc/nginx/x.conf:3"
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "x.conf:3" in str(err.value) and "restored" in str(err.value)
    assert snapshot(root) == before
    assert fake.reloads == 0
    assert not (tmp_path / "webroot/.well-known/acme-challenge").exists()


def test_malformed_config_names_file_and_line_and_writes_nothing(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY, "b.conf": "server {\n  listen 80\n}\n"})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert f"{root}/sites/b.conf:3" in str(err.value)
    assert snapshot(root) == before and fake.tests == 0


def test_two_blocks_claiming_a_name_are_refused(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY, "b.conf": PROXY})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "sites/a.conf:1" in str(err.value) and "sites/b.conf:1" in str(err.value)
    assert snapshot(root) == before


def test_nothing_served_because_nginx_is_down_says_so(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    make_plugin(tmp_path).perform([achall("a.example")])
    fake.running = False
    fake.serving = ""
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example", 2)])
    assert "nginx is not running" in str(err.value)
    assert snapshot(root) == before and fake.reloads == 1


def test_unwritable_webroot_is_a_clear_error(tmp_path, fake):
    write_conf(tmp_path, {"a.conf": PROXY})
    (tmp_path / "file").write_text("")
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path, nginx_webroot_path=str(tmp_path / "file/sub")).perform(
            [achall("a.example")])
    assert "cannot write the challenge file" in str(err.value)


def test_redirect_only_block_gets_a_guard_and_keeps_its_return(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": "server {\n    listen 80;\n    server_name a.example;\n"
                                 "    return 301 https://$host$request_uri;\n}\n"})
    make_plugin(tmp_path).perform([achall("a.example")])
    text = (root / "sites/a.conf").read_text()
    assert text.startswith(
        "server {\n    listen 80;\n    server_name a.example;\n"
        '    if ($uri ~ "^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$") {  %s\n'
        "        break;  %s\n    }  %s\n"
        "    return 301 https://$host$request_uri;\n    location ^~ /.well-known/acme-challenge/ {"
        % ((edit.MARK,) * 3))
    assert (fake.tests, fake.reloads) == (2, 1)  # nginx -t before the edit and after


def test_refusal_after_the_edit_leaves_no_edit_behind(tmp_path, fake, monkeypatch):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    monkeypatch.setattr(fake, "fetch", lambda *a, **k: (401, b"auth"))
    inst = make_plugin(tmp_path)
    monkeypatch.setattr(authenticate, "SELF_CHECK_TIMEOUT", 0)
    with pytest.raises(errors.PluginError) as err:
        inst.perform([achall("a.example")])
    assert "HTTP 401" in str(err.value)
    after = snapshot(root)
    assert {p: after[p] for p in before} == before  # the files the edit went into
    assert fake.reloads == 2  # the edit's, then back to the original


def test_existing_location_with_another_root_is_adopted(tmp_path, fake):
    served = tmp_path / "srv/le"
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    location /.well-known/acme-challenge/ { root %s; }\n"
        "    location / {" % served)})
    before = snapshot(root)
    fake.serving = fake._loaded()  # nginx runs this configuration
    inst = make_plugin(tmp_path)
    responses = inst.perform([achall("a.example")])
    assert responses == ["response-a.example"]
    # certbot stores it in the renewal conf: renewals find it served at once
    assert inst.config.nginx_webroot_path == str(served)
    assert snapshot(root) == before and (fake.tests, fake.reloads) == (0, 0)
    assert os.listdir(served / ".well-known/acme-challenge")  # served from there


def test_location_that_proxies_the_challenge_path_is_refused(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    location /.well-known/acme-challenge/ {\n"
        "        proxy_pass http://127.0.0.1:9000;\n    }\n    location / {")})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "sites/a.conf:4" in str(err.value) and "proxy_pass (" in str(err.value)
    assert snapshot(root) == before and fake.reloads == 0


def test_location_in_an_included_snippet_is_recognised(tmp_path, fake):
    webroot = tmp_path / "webroot"
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    include snippets/le.inc;\n    location / {")})
    (root / "snippets").mkdir()
    (root / "snippets/le.inc").write_text(
        "location ^~ /.well-known/acme-challenge/ {\n    root %s;\n}\n" % webroot)
    config = Config.load(str(root / "nginx.conf"))
    served = challenge_location.served_challenge_dir(config, config.server_blocks()[0], "a.example", "/")
    assert served.path == str(webroot / ".well-known/acme-challenge")


@pytest.mark.parametrize("location", [
    "location ^~ /.well-known/acme-challenge/ { root {w}; }",
    "location /.well-known/acme-challenge { root {w}; }",
    "location /.well-known/ { alias {w}/.well-known/; }",
    # the location 0.1.0 added (no types map, no disable_symlinks)
    "location ^~ /.well-known/acme-challenge/ {  # certbot-nginx-webroot\n"
    "        root {w};  # certbot-nginx-webroot\n"
    "        default_type text/plain;  # certbot-nginx-webroot\n"
    "        try_files $uri =404;  # certbot-nginx-webroot\n"
    "    }  # certbot-nginx-webroot",
])
def test_existing_equivalent_location_means_no_edit(tmp_path, fake, location):
    webroot = str(tmp_path / "webroot")
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    " + location.replace("{w}", webroot) + "\n    location / {")})
    before = snapshot(root)
    # The fake nginx was never reloaded, so it serves nothing: the plugin
    # looks at the config, finds nothing to add, and says nginx does not serve.
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "nginx does not serve the challenge files" in str(err.value)
    assert snapshot(root) == before and (fake.tests, fake.reloads) == (0, 0)


def test_name_without_any_block_gets_our_own_server(tmp_path, fake):
    root = write_conf(tmp_path, {}, main="events {}\nhttp {\n    server { listen 8080; }\n}\n")
    make_plugin(tmp_path).perform([achall("new.example")])
    own = (root / own_server.OWN_FILE).read_text()
    assert "server_name new.example;" in own and "listen 80;" in own
    main = (root / "nginx.conf").read_text()
    assert main == ("events {}\nhttp {\n    server { listen 8080; }\n    include %s/%s;  %s\n}\n"
                    % (root, own_server.OWN_FILE, edit.MARK))


def test_own_server_goes_where_an_include_glob_already_looks(tmp_path, fake):
    root = write_conf(tmp_path, {"x.conf": "server { listen 8080; }\n"})
    before_main = (root / "nginx.conf").read_bytes()
    make_plugin(tmp_path).perform([achall("new.example")])
    assert "server_name new.example;" in (root / "sites" / own_server.OWN_FILE).read_text()
    assert (root / "nginx.conf").read_bytes() == before_main


@pytest.mark.parametrize("version, http2, listen_flags, http2_lines", [
    ("1.22.1", True, "ssl http2", ""),                  # Debian 12: the listen flag
    ("1.25.0", True, "ssl http2", ""),
    ("1.25.1", True, "ssl", "    http2 on;  %s\n"),    # the http2 directive since 1.25.1
    ("1.27.4", True, "ssl", "    http2 on;  %s\n"),
    ("1.27.4", False, "ssl", ""),                       # built without HTTP/2
])
def test_deploy_cert_makes_the_80_block_serve_https_too(
        tmp_path, fake, version, http2, listen_flags, http2_lines):
    # Issue 20 C5: the block that serves the site gets the TLS listens and the
    # certificate (it was copied whole into a new block before).
    fake.version_output = nginx_v(version, http2)
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    listen 80;\n", "    listen 80 default_server;\n    listen [::]:80;\n")})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", "/le/chain.pem",
                     "/le/fullchain.pem")
    inst.save("deploy")
    text = (root / "sites/a.conf").read_text()
    marks = 6 if http2_lines else 5
    assert text == (
        "server {\n    listen 80 default_server;\n    listen [::]:80;\n"
        "    listen 443 {0};  %s\n    listen [::]:443 {0};  %s\n{1}"
        "    server_name a.example;\n    ssl_certificate /le/fullchain.pem;  %s\n"
        "    ssl_certificate_key /le/key.pem;  %s\n"
        "    include {2};  %s\n    location / {\n"
        "        proxy_pass http://127.0.0.1:8080;\n    }\n}\n"
        .replace("{0}", listen_flags).replace("{1}", http2_lines)
        .replace("{2}", str(tmp_path / "le" / tls.SNIPPET_NAME))
        % ((edit.MARK,) * marks))
    assert fake.tests == 2 and fake.reloads == 0


def test_deploy_cert_replaces_the_certificate_in_an_existing_443_block(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY + "server {\n    listen 443 ssl;\n"
                                 "    server_name a.example;\n"
                                 "    ssl_certificate     /old/cert.pem;\n"
                                 "    ssl_certificate_key /old/key.pem; # mine\n}\n"})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("deploy")
    text = (root / "sites/a.conf").read_text()
    assert text == PROXY + ("server {\n    listen 443 ssl;\n    server_name a.example;\n"
                            "    ssl_certificate     /le/fullchain.pem;  %s\n"
                            "    ssl_certificate_key /le/key.pem; # mine\n"
                            "    include %s;  %s\n}\n"
                            % (edit.MARK, tmp_path / "le" / tls.SNIPPET_NAME, edit.MARK))
    inst.rollback_checkpoints(1)
    assert "/old/cert.pem" in (root / "sites/a.conf").read_text()


def test_deploy_cert_refuses_to_copy_a_redirect_only_block(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": "server {\n    listen 80;\n    server_name a.example;\n"
                                 "    return 301 https://$host$request_uri;\n}\n"})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).deploy_cert("a.example", "/c", "/k", None, "/f")
    assert "only redirects to HTTPS" in str(err.value)
    assert snapshot(root) == before


def test_certificate_set_in_a_shared_include_is_refused(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": "server {\n    listen 443 ssl;\n"
                                 "    server_name a.example;\n    include ssl.inc;\n}\n"})
    (root / "ssl.inc").write_text("ssl_certificate /x;\nssl_certificate_key /y;\n")
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).deploy_cert("a.example", "/c", "/k", None, "/f")
    assert "ssl.inc:1" in str(err.value)


def test_redirect_enhancement_without_a_challenge_location_excepts_nothing(tmp_path, fake):
    # No location serves challenge files (e.g. another authenticator's
    # block): the redirect is certbot's form for the name, and nothing under
    # the challenge path gets past it or the checks after it.
    root = write_conf(tmp_path, {"a.conf": PROXY.replace("a.example;",
                                                         "a.example legacy.example;")})
    inst = make_plugin(tmp_path)
    inst.enhance("a.example", "redirect")
    inst.save("redirect")
    text = (root / "sites/a.conf").read_text()
    assert ("    server_name a.example legacy.example;\n"
            "    if ($host = a.example) {  %s\n"
            "        return 301 https://$host$request_uri;  %s\n    }  %s\n"
            "    location / {\n" % ((edit.MARK,) * 3)) in text
    assert "acme-challenge" not in text
    with pytest.raises(errors.PluginEnhancementAlreadyPresent):
        make_plugin(tmp_path).enhance("a.example", "redirect")


def test_redirect_enhancement_excepts_what_the_challenge_location_serves(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY.replace("a.example;",
                                                         "a.example legacy.example;")})
    config = Config.load(str(root / "nginx.conf"))
    challenge_location.ensure_challenge_location(config, config.server_blocks()[0], "/w", "a.example")
    config.save()
    inst = make_plugin(tmp_path)
    inst.enhance("a.example", "redirect")
    inst.save("redirect")
    text = (root / "sites/a.conf").read_text()
    # No break: challenge requests skip the redirect alone.
    assert "break;" not in text
    assert ("    server_name a.example legacy.example;\n"
            "    set $nginx_webroot_redirect 0;  %s\n"
            "    if ($host = a.example) {  %s\n        set $nginx_webroot_redirect 1;  %s\n"
            "    }  %s\n"
            '    if ($uri ~ "^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$") {  %s\n'
            "        set $nginx_webroot_redirect 0;  %s\n    }  %s\n"
            "    if ($nginx_webroot_redirect) {  %s\n"
            "        return 301 https://$host$request_uri;  %s\n    }  %s\n"
            % ((edit.MARK,) * 10)) in text
    with pytest.raises(errors.PluginEnhancementAlreadyPresent):
        make_plugin(tmp_path).enhance("a.example", "redirect")
    legacy = make_plugin(tmp_path)
    legacy.enhance("legacy.example", "redirect")  # not yet redirected: its own if
    legacy.save("redirect")
    text = (root / "sites/a.conf").read_text()
    assert text.count("set $nginx_webroot_redirect 0;") == 2  # the start, the exception
    assert "if ($host = legacy.example)" in text


def test_catch_all_redirect_is_a_redirect_in_place(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": "server {\n    listen 80 default_server;\n"
                                 "    server_name _;\n    include redirect.inc;\n}\n"})
    (root / "redirect.inc").write_text("return 301 https://$host$request_uri;\n")
    before = snapshot(root)
    with pytest.raises(errors.PluginEnhancementAlreadyPresent):
        make_plugin(tmp_path).enhance("a.example", "redirect")
    assert snapshot(root) == before


def test_get_all_names_lists_plain_names(tmp_path, fake):
    write_conf(tmp_path, {"a.conf": PROXY.replace("a.example;", "a.example *.w.example "
                                                  "~^x www.* _ localhost B.example;")})
    assert make_plugin(tmp_path).get_all_names() == {"a.example", "b.example"}


def test_restart_reloads_only_when_something_changed(tmp_path, fake, monkeypatch):
    write_conf(tmp_path, {"a.conf": PROXY})
    inst = make_plugin(tmp_path)
    monkeypatch.setattr(inst._golive, "wait_certificates_live", lambda: None)
    inst.restart()
    inst.restart()
    assert fake.reloads == 1


def test_prepare_reports_a_missing_binary(tmp_path, monkeypatch):
    write_conf(tmp_path, {})
    inst = make_plugin(tmp_path, nginx_webroot_ctl=str(tmp_path / "no-nginx"))
    with pytest.raises(errors.NoInstallationError) as err:
        inst.prepare()
    assert "no-nginx" in str(err.value)


def test_a_config_that_already_fails_nginx_t_is_not_touched(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    fake.broken = "nginx: [emerg] unknown directive \"proxy_passs\" in /x/a.conf:5"
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "already fails before any change" in str(err.value)
    assert "/x/a.conf:5" in str(err.value) and "nothing was changed" in str(err.value)
    assert snapshot(root) == before and (fake.tests, fake.reloads) == (1, 0)


def test_a_program_that_is_not_http_is_reported_as_the_cause(tmp_path, fake, monkeypatch):
    write_conf(tmp_path, {"a.conf": PROXY.replace("listen 80;", "listen 192.0.2.1:80;")})

    def not_http(host, addr, port, path, timeout=5.0, proxy_protocol=False):
        raise http.client.BadStatusLine("SSH-2.0-OpenSSH_9.2")
    monkeypatch.setattr(fake, "fetch", not_http)
    monkeypatch.setattr(authenticate, "SELF_CHECK_TIMEOUT", 0.1)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "via 192.0.2.1:80: BadStatusLine: SSH-2.0-OpenSSH_9.2" in str(err.value)


def test_a_hand_edit_made_during_the_run_is_not_overwritten(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    hand_edit = PROXY.replace("8080", "8081")
    (root / "sites/a.conf").write_text(hand_edit)  # while the CA validated
    with pytest.raises(errors.PluginError) as err:
        inst.save("deploy")
    assert f"{root}/sites/a.conf changed on disk" in str(err.value)
    assert (root / "sites/a.conf").read_text() == hand_edit


def test_include_loop_is_one_clear_line(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY + "include sites/a.conf;\n"})
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert f"include loop: {root}/sites/a.conf:8 -> {root}/sites/a.conf" in str(err.value)


def test_rollback_after_a_failed_live_check_restores_and_restarts_cleanly(
        tmp_path, fake, monkeypatch):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    fullchain = tmp_path / "fullchain.pem"
    fullchain.write_text("")
    monkeypatch.setattr(golive, "LIVE_TIMEOUT", 0.2)
    monkeypatch.setattr(fake, "first_certificate_der", lambda path: b"new")
    monkeypatch.setattr(fake, "served_certificate", lambda *a, **k: b"old")
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, str(fullchain))
    inst.save("Deployed ACME Certificate")
    with pytest.raises(errors.PluginError):
        inst.restart()
    # what certbot does next (client._rollback_and_restart)
    inst.rollback_checkpoints()
    inst.restart()  # must not wait for the certificate that was rolled back
    assert snapshot(root) == before and fake.reloads == 2


def test_install_while_nginx_is_stopped_is_rolled_back_and_says_so(tmp_path, fake, caplog):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    fake.running = False
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("Deployed ACME Certificate")
    with pytest.raises(errors.MisconfigurationError) as err:
        inst.restart()
    assert "nginx is not running" in str(err.value) and "a.example" in str(err.value)
    inst.rollback_checkpoints()
    inst.restart()  # certbot's restore then succeeds: nothing is waiting to be served
    assert snapshot(root) == before and fake.reloads == 0
    assert "takes effect when nginx starts" in caplog.text


def test_dry_run_on_first_use_serves_the_location_then_undoes_it(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    auth = make_plugin(tmp_path, dry_run=True)
    assert auth.perform([achall("a.example")]) == ["response-a.example"]
    # Served for this run's challenges: edited, tested, reloaded ...
    assert "acme-challenge" in (root / "sites/a.conf").read_text()
    assert (fake.tests, fake.reloads) == (2, 1)
    assert (tmp_path / "work/temp").is_dir()  # certbot's temporary checkpoint
    auth.cleanup([achall("a.example")])
    # ... and undone with the challenges: the files as they were, served again.
    assert snapshot(root) == before and fake.reloads == 2
    assert "acme-challenge" not in fake.serving
    assert not (tmp_path / "work/temp").exists()


def test_dry_run_refusal_is_the_real_runs_and_leaves_nothing(tmp_path, fake, monkeypatch):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    monkeypatch.setattr(fake, "fetch", lambda *args, **kwargs: (403, b"forbidden"))
    messages = []
    for dry_run in (True, False):
        with pytest.raises(errors.PluginError) as err:
            make_plugin(tmp_path, dry_run=dry_run).perform([achall("a.example")])
        messages.append(str(err.value))
        assert snapshot(root) == before
        assert not (tmp_path / "work/temp").exists()
    assert messages[0] == messages[1] and "nginx does not serve" in messages[0]


def test_prepare_undoes_what_an_interrupted_dry_run_left(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    before = snapshot(root)
    make_plugin(tmp_path, dry_run=True).perform([achall("a.example")])  # then killed
    assert snapshot(root) != before
    reloads = fake.reloads
    make_plugin(tmp_path).prepare()
    after = snapshot(root)
    after.pop(str(root / ".certbot.lock"))  # prepare's lock on the server root
    assert after == before and fake.reloads == reloads + 1
    assert not (tmp_path / "work/temp").exists()


def test_a_second_run_cannot_take_the_server_root_lock(tmp_path, fake):
    root = write_conf(tmp_path, {"a.conf": PROXY})
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from certbot import util; util.lock_dir_until_exit(sys.argv[1]); "
        "print('locked', flush=True); time.sleep(30)"), str(root)], stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(errors.PluginError) as err:
            make_plugin(tmp_path).prepare()
        assert f"cannot lock {root}: another certbot run" in str(err.value)
    finally:
        holder.kill()
        holder.wait()


def test_every_added_line_is_marked_and_user_lines_stay(tmp_path, fake):
    # What docs/behaviour.md promises about the marker, line by line.
    source = ("server {\n    listen 80;\n    server_name a.example;\n\n"
              "    # the app\n    location / {\n        proxy_pass http://127.0.0.1:8080;"
              "  # keep\n    }\n}\n")
    root = write_conf(tmp_path, {"a.conf": source})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("deploy")
    text = (root / "sites/a.conf").read_text()
    # The block serves HTTPS itself: every line added is marked, and the
    # user's lines (blank and comment lines included) are as they were.
    assert [line for line in text.splitlines(True) if not line.rstrip("\n").endswith(
        edit.MARK)] == source.splitlines(True)
    assert text.count(edit.MARK) == 4  # listen, the pair, the policy include


def test_a_deeply_nested_server_block_is_edited_and_serves_https(tmp_path, fake):
    depth = 1500  # past Python's default recursion limit
    nested = "    location /a {\n" * depth + "        return 204;\n" + "    }\n" * depth
    root = write_conf(tmp_path, {"a.conf": PROXY.replace("    location / {", nested +
                                                         "    location / {")})
    inst = make_plugin(tmp_path)
    inst.perform([achall("a.example")])
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("deploy")
    text = (root / "sites/a.conf").read_text()
    assert text.count("location /a {") == depth  # served over HTTPS by the block itself
    assert text.count("location ^~ /.well-known/acme-challenge/") == 1
    assert text.count("listen 443 ssl") == 1


def self_signed(tmp_path, *names):
    import subprocess
    cert = tmp_path / f"{names[0]}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN={names[0]}",
                    "-addext", "subjectAltName=" + ",".join(f"DNS:{n}" for n in names),
                    "-keyout", str(tmp_path / f"{names[0]}.key"), "-out", str(cert)],
                   check=True, capture_output=True)
    return str(cert)


def test_https_goes_into_the_named_block_not_a_default_elsewhere(tmp_path, fake):
    # Debian's stock default answers on [::]:80; the site only on IPv4.
    root = write_conf(tmp_path, {
        "0-default.conf": "server {\n    listen [::]:80 default_server;\n    server_name _;\n"
                          "    root /var/www/html;\n}\n",
        "a.conf": PROXY})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("deploy")
    assert "443" not in (root / "sites/0-default.conf").read_text()
    site = (root / "sites/a.conf").read_text()
    assert site.count("server {") == 1 and f"listen 443 ssl http2;  {edit.MARK}" in site
    assert "[::]" not in site


def test_replacing_a_certificate_other_names_still_need_is_refused(tmp_path, fake):
    a = self_signed(tmp_path, "a.example")
    b = self_signed(tmp_path, "b.example")
    root = write_conf(tmp_path, {"ab.conf": "server {\n    listen 443 ssl;\n"
                                 "    server_name a.example b.example;\n"
                                 f"    ssl_certificate {a};\n    ssl_certificate_key /k;\n}}\n"})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).deploy_cert("b.example", b, "/k2", None, b)
    assert "ab.conf:1" in str(err.value) and "serves a.example with" in str(err.value)
    assert "-d a.example -d b.example" in str(err.value)
    assert snapshot(root) == before
    both = self_signed(tmp_path, "b.example", "a.example")
    inst = make_plugin(tmp_path)
    inst.deploy_cert("b.example", both, "/k2", None, both)  # covers both: fine
    inst.save("deploy")
    assert both in (root / "sites/ab.conf").read_text()


@pytest.mark.skipif(not os.path.exists("/usr/sbin/nginx"), reason="needs /usr/sbin/nginx")
def test_prepare_finds_nginx_from_a_crontab_path(tmp_path, monkeypatch):
    write_conf(tmp_path, {})
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # a root crontab's; nginx is in /usr/sbin
    make_plugin(tmp_path).prepare()
    assert "/usr/sbin" in os.environ["PATH"].split(os.pathsep)


def test_directory_options_are_stored_absolute(tmp_path, monkeypatch):
    import argparse
    parser = argparse.ArgumentParser()
    plugin.NginxWebroot.inject_parser_options(parser, "nginx-webroot")
    monkeypatch.chdir(tmp_path)
    parsed = parser.parse_args(["--nginx-webroot-path", "web",
                                "--nginx-webroot-server-root", "."])
    assert parsed.nginx_webroot_path == str(tmp_path / "web")
    assert parsed.nginx_webroot_server_root == str(tmp_path)
    assert parser.parse_args([]).nginx_webroot_path == "/var/www/_letsencrypt"


@pytest.mark.parametrize("local", [True, False])
def test_ip_address_challenge_is_asked_at_the_address_with_it_as_host(
        tmp_path, fake, monkeypatch, local):
    write_conf(tmp_path, {"a.conf": PROXY, "v6.conf": PROXY.replace(
        "listen 80;", "listen [::]:80 default_server;").replace("a.example", "b.example")})
    asked = []
    fetch = fake.fetch
    monkeypatch.setattr(fake, "fetch", lambda host, addr, port, path, timeout=5.0, proxy_protocol=False: (
        asked.append((host, addr, port)), fetch(host, addr, port, path))[1])
    monkeypatch.setattr(fake, "is_local_address", lambda ip: local)
    root = tmp_path / "nginx"
    before = snapshot(root)
    make_plugin(tmp_path).perform([achall("::1")])
    # Only the block answering connections to ::1 (the default of [::]:80) got the location.
    after = snapshot(root)
    assert [p for p in after if after[p] != before[p]] == [str(root / "sites" / "v6.conf")]
    # Behind NAT the address is not this machine's: nginx sees a local one, so loopback.
    assert set(asked) == {("[::1]", "[::1]" if local else "[::]", 80)}
    assert fake.reloads == 1


def lineage_files(tmp_path, lineage, key_type, name="a.example"):
    """fullchain.pem and privkey.pem of a lineage under tmp_path/live, with
    a key of key_type, for name."""
    import subprocess
    live = tmp_path / "live" / lineage
    live.mkdir(parents=True)
    new_key = ["-newkey", "rsa:2048"] if key_type == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(["openssl", "req", "-x509", *new_key, "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                    "-keyout", str(live / "privkey.pem"), "-out", str(live / "fullchain.pem")],
                   check=True, capture_output=True)
    return str(live / "fullchain.pem"), str(live / "privkey.pem")


def https_block(*pairs):
    lines = "".join(f"    ssl_certificate {cert};\n    ssl_certificate_key {key};\n"
                    for cert, key in pairs)
    return f"server {{\n    listen 443 ssl;\n    server_name a.example;\n{lines}}}\n"


def deploy(tmp_path, lineage):
    inst = make_plugin(tmp_path)
    fullchain, key = lineage
    inst.deploy_cert("a.example", fullchain, key, None, fullchain)
    inst.save("deploy")


def pairs_of(root):
    text = (root / "sites/a.conf").read_text()
    return [line.split()[1].rstrip(";") for line in text.splitlines()
            if line.strip().startswith(("ssl_certificate ", "ssl_certificate_key "))]


def test_a_lineage_of_the_other_key_type_goes_in_beside_the_first(tmp_path, fake):
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    root = write_conf(tmp_path, {"a.conf": https_block(ecdsa)})
    deploy(tmp_path, rsa)
    assert pairs_of(root) == [*ecdsa, *rsa]
    text = (root / "sites/a.conf").read_text()
    assert f"    ssl_certificate_key {ecdsa[1]};\n    ssl_certificate {rsa[0]};  {edit.MARK}\n" \
           f"    ssl_certificate_key {rsa[1]};  {edit.MARK}\n" in text
    # Either again: nothing changes.
    before = snapshot(root)
    deploy(tmp_path, rsa)
    deploy(tmp_path, ecdsa)
    assert snapshot(root) == before


@pytest.mark.parametrize("new_type", ["rsa", "ecdsa"])
def test_a_block_with_both_keeps_the_other_type(tmp_path, fake, new_type):
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    new = lineage_files(tmp_path, "a-new", new_type)
    root = write_conf(tmp_path, {"a.conf": https_block(rsa, ecdsa)})
    deploy(tmp_path, new)
    assert pairs_of(root) == ([*new, *ecdsa] if new_type == "rsa" else [*rsa, *new])


def test_a_placeholder_of_the_other_type_is_replaced(tmp_path, fake):
    snakeoil = lineage_files(tmp_path, "snakeoil", "rsa", name="localhost")
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    root = write_conf(tmp_path, {"a.conf": https_block(snakeoil)})
    deploy(tmp_path, ecdsa)
    assert pairs_of(root) == [*ecdsa]


def test_renewals_of_two_lineages_for_one_name_are_both_checked(tmp_path, fake, monkeypatch):
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    write_conf(tmp_path, {"a.conf": https_block(rsa, ecdsa)})
    served = {None: probes.first_certificate_der(ecdsa[0]),
              "rsa": probes.first_certificate_der(rsa[0]),
              "ecdsa": probes.first_certificate_der(ecdsa[0])}
    asked = []

    def served_certificate(sni, addr, port, timeout=5.0, key_type=None, proxy_protocol=False):
        asked.append(key_type)
        return served[key_type]
    monkeypatch.setattr(fake, "served_certificate", served_certificate)
    inst = make_plugin(tmp_path)
    for fullchain in (rsa[0], ecdsa[0]):
        inst.renew_deploy(types.SimpleNamespace(fullchain_path=fullchain,
                                                names=lambda: ["a.example"],
                                                lineagename="x"))
    inst.restart()
    assert fake.reloads == 1
    # The ECDSA certificate by default; the RSA one only to an RSA-only client.
    assert sorted(asked, key=str) == sorted([None, None, "rsa"], key=str)
    served["rsa"] = b"old"
    inst.renew_deploy(types.SimpleNamespace(fullchain_path=rsa[0], names=lambda: ["a.example"],
                                            lineagename="x"))
    monkeypatch.setattr(golive, "LIVE_TIMEOUT", 0.1)
    with pytest.raises(errors.PluginError) as err:
        inst.restart()
    assert f"does not serve {rsa[0]} for a.example" in str(err.value)


def test_a_tls13_only_block_is_not_a_failed_rsa_check(tmp_path, fake, monkeypatch, caplog):
    import ssl
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    write_conf(tmp_path, {"a.conf": https_block(rsa, ecdsa)})
    default = [probes.first_certificate_der(ecdsa[0])]  # what a default handshake gets

    def served_certificate(sni, addr, port, timeout=5.0, key_type=None, reason=None,
                           proxy_protocol=False):
        if key_type is None:
            return default[0]
        err = ssl.SSLError(1, "alert")
        err.reason = reason_now[0]
        raise err
    monkeypatch.setattr(fake, "served_certificate", served_certificate)
    monkeypatch.setattr(golive, "LIVE_TIMEOUT", 0.1)
    reason_now = ["TLSV1_ALERT_PROTOCOL_VERSION"]  # nginx refuses TLS 1.2
    inst = make_plugin(tmp_path)
    inst.renew_deploy(types.SimpleNamespace(fullchain_path=rsa[0], names=lambda: ["a.example"],
                                            lineagename="x"))
    inst.restart()
    assert "cannot check that a.example serves rsa" in caplog.text
    reason_now[0] = "SSLV3_ALERT_HANDSHAKE_FAILURE"  # TLS 1.2 but no RSA certificate
    inst.renew_deploy(types.SimpleNamespace(fullchain_path=rsa[0], names=lambda: ["a.example"],
                                            lineagename="x"))
    with pytest.raises(errors.PluginError):
        inst.restart()
    # TLS 1.3 only, and the default handshake gets an RSA certificate that is
    # not the new one (an old one still served): that is a failed check.
    reason_now[0] = "TLSV1_ALERT_PROTOCOL_VERSION"
    default[0] = probes.first_certificate_der(lineage_files(tmp_path, "old-rsa", "rsa")[0])
    inst.renew_deploy(types.SimpleNamespace(fullchain_path=rsa[0], names=lambda: ["a.example"],
                                            lineagename="x"))
    with pytest.raises(errors.PluginError):
        inst.restart()


def test_a_pair_added_beside_must_cover_every_name_of_the_block(tmp_path, fake):
    """nginx picks between a block's pairs by what the client supports, not
    by name: an ECDSA certificate for a alone, added beside an RSA one for a
    and b, would be served to b too."""
    both = lineage_files(tmp_path, "ab-rsa", "rsa")
    subprocess_san = __import__("subprocess")
    subprocess_san.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=a.example",
                        "-addext", "subjectAltName=DNS:a.example,DNS:b.example",
                        "-keyout", both[1], "-out", both[0]], check=True, capture_output=True)
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    root = write_conf(tmp_path, {"a.conf": https_block(both).replace(
        "server_name a.example;", "server_name a.example b.example;")})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        deploy(tmp_path, ecdsa)
    assert "b.example" in str(err.value)
    assert snapshot(root) == before


def test_relative_certificate_paths_are_read_from_the_configuration_directory(tmp_path, fake):
    """`ssl_certificate ssl/x.pem` is relative to nginx's configuration
    directory (nginx.org's own nginx.conf uses `cert.pem`), not to certbot's
    working directory."""
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    ecdsa = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    root = write_conf(tmp_path, {})
    (root / "ssl").mkdir()
    for src, dst in zip(rsa, ("ssl/a.pem", "ssl/a.key")):
        (root / dst).write_bytes(open(src, "rb").read())
    (root / "sites" / "a.conf").write_text(https_block(("ssl/a.pem", "ssl/a.key")))
    deploy(tmp_path, ecdsa)  # the RSA pair is read, so the ECDSA one goes beside it
    assert pairs_of(root) == ["ssl/a.pem", "ssl/a.key", *ecdsa]


def test_the_pair_of_the_key_type_goes_before_an_unreadable_one(tmp_path, fake):
    rsa = lineage_files(tmp_path, "a-rsa", "rsa")
    new = lineage_files(tmp_path, "a-new", "rsa")
    root = write_conf(tmp_path, {"a.conf": https_block(("/gone/cert.pem", "/gone/key.pem"), rsa)})
    deploy(tmp_path, new)
    assert pairs_of(root) == ["/gone/cert.pem", "/gone/key.pem", *new]


def test_the_self_check_sends_a_proxy_header_where_the_listen_wants_one(tmp_path, fake):
    """nginx behind a balancer drops a request without a PROXY header: the
    self-check sends one where the config listens with proxy_protocol."""
    write_conf(tmp_path, {"a.conf": PROXY.replace("listen 80;", "listen 80 proxy_protocol;")})
    fake.proxy_protocol_ports.add(80)
    make_plugin(tmp_path).perform([achall("a.example")])
    assert fake.reloads == 1


def test_a_dropped_self_check_without_proxy_protocol_in_the_config_says_so(
        tmp_path, fake, monkeypatch):
    """Something drops the plain request but the config has no
    proxy_protocol there: no header is sent, and the report does not
    claim one was."""
    write_conf(tmp_path, {"a.conf": PROXY})
    fake.proxy_protocol_ports.add(80)
    monkeypatch.setattr(authenticate, "SELF_CHECK_TIMEOUT", 0.1)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).perform([achall("a.example")])
    assert "via 127.0.0.1:80: RemoteDisconnected" in str(err.value)
    assert "PROXY" not in str(err.value)


@pytest.mark.parametrize("rules, refused", [
    ("allow 127.0.0.1;\n    deny all;", True),  # loopback yes, the CA no
    ("deny 192.0.2.1;\n    allow all;", False),
])
def test_served_on_loopback_but_not_to_the_ca_is_refused_before_asking(tmp_path, fake, rules,
                                                                      refused):
    # The location is there and nginx serves it (the fast path: no edit);
    # nginx's access rules are judged for the CA's public address.
    webroot = tmp_path / "webroot"
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    %s\n    location ^~ /.well-known/acme-challenge/ "
        "{ root %s; }\n    location / {" % (rules, webroot))})
    fake.reload()
    before = snapshot(root)
    if refused:
        with pytest.raises(errors.PluginError) as err:
            make_plugin(tmp_path).perform([achall("a.example")])
        assert "deny all (%s/sites/a.conf:5) keeps the CA out" % root in str(err.value)
        assert "location at %s/sites/a.conf:6" % root in str(err.value)
        assert not (webroot / ".well-known").exists()  # what the run made is gone
    else:
        assert make_plugin(tmp_path).perform([achall("a.example")]) == ["response-a.example"]
    assert snapshot(root) == before and fake.reloads == 1


def test_a_config_it_cannot_read_is_not_judged_when_nginx_serves(tmp_path, fake, caplog):
    webroot = tmp_path / "webroot"
    root = write_conf(tmp_path, {"a.conf": PROXY.replace(
        "    location / {", "    location ^~ /.well-known/acme-challenge/ { root %s; }\n"
        "    location / {" % webroot)})
    fake.reload()
    (root / "sites/b.conf").write_text("server { listen 80; server_name b.example;\n")
    assert make_plugin(tmp_path).perform([achall("a.example")]) == ["response-a.example"]
    assert "Not checking that nginx lets the CA in" in caplog.text


def test_a_wildcard_certificate_in_a_regex_block_is_not_replaced_by_one_name(tmp_path, fake):
    # Issue 20 C1: the block answers every subdomain; the new certificate one.
    wild = self_signed(tmp_path, "*.example.com")
    foo = self_signed(tmp_path, "foo.example.com")
    root = write_conf(tmp_path, {"w.conf": "server {\n    listen 443 ssl;\n"
                                 "    server_name ~^(?<sub>[a-z0-9-]+)\\.example\\.com$;\n"
                                 f"    ssl_certificate {wild};\n    ssl_certificate_key /k;\n}}\n"})
    before = snapshot(root)
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path).deploy_cert("foo.example.com", foo, "/k2", None, foo)
    assert "serves *.example.com with" in str(err.value)
    assert "-d *.example.com -d foo.example.com" in str(err.value)
    assert snapshot(root) == before


def test_an_expanded_certificate_goes_into_the_https_block_of_the_site(tmp_path, fake):
    # Issue 20 C2, on the layout an earlier version left: a copy for a.example
    # beside the :80 block that answers a.example and b.example.
    root = write_conf(tmp_path, {"ab.conf": PROXY.replace("a.example;", "a.example b.example;")
                                 + "\nserver {\n    listen 443 ssl;\n    server_name a.example;\n"
                                 "    ssl_certificate /le/old.pem;\n    ssl_certificate_key /k;\n"
                                 "    location / {\n        proxy_pass http://127.0.0.1:8080;\n"
                                 "    }\n}\n"})
    both = self_signed(tmp_path, "a.example", "b.example")
    inst = make_plugin(tmp_path)
    for name in ("a.example", "b.example"):
        inst.deploy_cert(name, both, "/k2", None, both)
    inst.save("deploy")
    text = (root / "sites/ab.conf").read_text()
    assert text.count("server {") == 2  # no third block
    https = text.split("\nserver {")[1]
    assert f"    server_name b.example;  {edit.MARK}\n" in https and both in https
    config = Config.load(str(root / "nginx.conf"))
    for name in ("a.example", "b.example"):
        assert [m.server.ref.line for m in sites.answering(config, name, 443, False)] == [9]


def test_the_default_https_block_of_the_site_gets_the_names_it_serves(tmp_path, fake):
    # Issue 20 C4: an app's 443 default_server names example.com only; :80 redirects.
    root = write_conf(tmp_path, {"app.conf": (
        "server {\n    listen 80 default_server;\n    server_name _;\n"
        "    return 301 https://$host$request_uri;\n}\n"
        "server {\n    listen 443 ssl default_server;\n    server_name example.com;\n"
        "    ssl_certificate /old.pem;\n    ssl_certificate_key /old.key;\n"
        "    root /srv/app;\n}\n")})
    cert = self_signed(tmp_path, "example.com", "www.example.com")
    inst = make_plugin(tmp_path)
    for name in ("example.com", "www.example.com"):
        inst.deploy_cert(name, cert, "/k2", None, cert)
    inst.save("deploy")
    text = (root / "sites/app.conf").read_text()
    assert text.count("server {") == 2 and text.count(cert) == 1 and "/old.pem" not in text
    config = Config.load(str(root / "nginx.conf"))
    assert certificate_lines.certificate_listens(config, "www.example.com", cert) == [("*", 443)]


def test_a_catch_all_default_https_block_is_not_the_site(tmp_path, fake):
    # A default TLS block that names none of the certificate's names (Debian's
    # snakeoil catch-all) is not where a site with a block of its own goes.
    root = write_conf(tmp_path, {"0.conf": "server {\n    listen 443 ssl default_server;\n"
                                 "    server_name _;\n    ssl_certificate /snake.pem;\n"
                                 "    ssl_certificate_key /snake.key;\n}\n", "a.conf": PROXY})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("a.example", "/le/cert.pem", "/le/key.pem", None, "/le/fullchain.pem")
    inst.save("deploy")
    assert "/le/" not in (root / "sites/0.conf").read_text()
    assert "listen 443 ssl;" in (root / "sites/a.conf").read_text()


def test_a_name_with_a_block_of_its_own_is_not_put_in_another_names_default(tmp_path, fake):
    # b.example has its own :80 block; a.example's HTTPS block is the first
    # (so the default) on *:443 and answers another name of the certificate.
    root = write_conf(tmp_path, {"a.conf": PROXY, "b.conf": PROXY.replace(
        "a.example", "b.example").replace("8080", "8081")})
    both = self_signed(tmp_path, "a.example", "b.example")
    inst = make_plugin(tmp_path)
    for name in ("a.example", "b.example"):
        inst.deploy_cert(name, both, "/k2", None, both)
    inst.save("deploy")
    for name in ("a", "b"):
        site = (root / f"sites/{name}.conf").read_text()
        assert site.count("server {") == 1 and both in site and "listen 443 ssl" in site


def test_a_name_with_its_own_80_block_gets_its_own_https_block_beside_a_wildcard(tmp_path, fake):
    # Issue 20 C1, "put the new pair where it belongs": the wildcard block
    # keeps its certificate; foo's own :80 block gets an HTTPS block, whose
    # exact name nginx prefers on 443.
    wild = self_signed(tmp_path, "*.example.com")
    foo = self_signed(tmp_path, "foo.example.com")
    root = write_conf(tmp_path, {
        "w.conf": "server {\n    listen 443 ssl;\n"
                  "    server_name ~^(?<sub>[a-z0-9-]+)\\.example\\.com$;\n"
                  f"    ssl_certificate {wild};\n    ssl_certificate_key /k;\n}}\n",
        "foo.conf": PROXY.replace("a.example", "foo.example.com")})
    inst = make_plugin(tmp_path)
    inst.deploy_cert("foo.example.com", foo, "/k2", None, foo)
    inst.save("deploy")
    assert wild in (root / "sites/w.conf").read_text()
    assert foo not in (root / "sites/w.conf").read_text()
    config = Config.load(str(root / "nginx.conf"))
    https = sites.answering(config, "foo.example.com", 443, False)
    assert [m.server.ref.file for m in https] == [str(root / "sites/foo.conf")]
    assert foo in parser_dump(https[0].server.ref)
    other = sites.answering(config, "bar.example.com", 443, False)
    assert [m.server.ref.file for m in other] == [str(root / "sites/w.conf")]


def parser_dump(node):
    from certbot_nginx_webroot import parser
    return parser.dump_node(node)


@pytest.mark.parametrize("served_already", [False, True])
def test_a_reload_an_earlier_renew_run_owed_is_made_by_the_next(tmp_path, fake, monkeypatch,
                                                                served_already):
    """certbot renew calls generic_updates for every lineage, also when
    nothing is due: the reload a killed run owed happens there, once, and
    only when nginx does not serve the lineage yet."""
    new = lineage_files(tmp_path, "a-ecdsa", "ecdsa")
    old = probes.first_certificate_der(lineage_files(tmp_path, "old", "ecdsa")[0])
    write_conf(tmp_path, {"a.conf": https_block(new)})
    renewals = tmp_path / "le/renewal"
    renewals.mkdir(parents=True)
    (renewals / "a.conf").write_text("")
    monkeypatch.setattr(fake, "served_certificate", lambda *args, **kwargs: (
        probes.first_certificate_der(new[0]) if served_already or fake.reloads else old))
    state = str(tmp_path / "work" / owed.STATE_NAME)
    os.makedirs(os.path.dirname(state))
    key = ("local", "nginx", str(tmp_path / "nginx/nginx.conf"))
    new_process()
    owed.remember_at(state, key, ["a.example"], new[0])  # then killed
    new_process()  # the next run: nothing due
    lineage = types.SimpleNamespace(fullchain_path=new[0], names=lambda: ["a.example"],
                                    lineagename="a")
    inst = make_plugin(tmp_path, verb="renew", renewal_configs_dir=str(renewals), certname=None)
    try:
        inst.generic_updates(lineage)
    finally:
        new_process()
    assert fake.reloads == (0 if served_already else 1)
    assert not os.path.exists(state)
    make_plugin(tmp_path, verb="renew", renewal_configs_dir=str(renewals),
                certname=None).generic_updates(lineage)
    assert fake.reloads == (0 if served_already else 1)  # honoured once
