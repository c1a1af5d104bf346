"""End to end, nginx in a container (issue 22): real certbot with this
plugin, real pebble, and nginx in a real Docker or Podman container of the
lab image (containerlab: laid out like the official nginx image, its
nginx.conf in the image, conf.d/, the webroot and /etc/letsencrypt on
volumes, --network host on the tests' loopback).

certbot runs on this machine with ``--nginx-webroot-container NAME``:
issue and install put the challenge location and the certificate lines
into conf.d/ with the paths as the container sees them; a forced renewal
edits nothing, reloads once (a SIGHUP to the master in the container, the
container not restarted), and the new certificate is served when certbot
exits.  Each fault is one line, no file changed, nginx untouched."""
import os
import re
import time

import configobj
import pytest

import containerlab
import lab
from certbot_nginx_webroot import tls

pytestmark = pytest.mark.e2e
engine = containerlab.engine_fixture()

NAME = "a.example"
SITE = ("server {\n    listen {http};\n    server_name %s;\n"
        "    location / {\n        return 200 \"app\\n\";\n    }\n}\n" % NAME)


class ContainerCertbot(lab.Certbot):
    """certbot on this machine, its configuration directory the one the
    container mounts as /etc/letsencrypt, with the engine's environment
    (the lab's own daemon socket or storage)."""

    def __init__(self, directory, acme, web):
        super().__init__(directory, acme, lab=None)
        self.web = web

    def base_args(self, ports=True):
        args = super().base_args(ports)
        args[args.index("--config-dir") + 1] = self.web.letsencrypt
        return args

    def plugin_args(self, container=None, webroot=None):
        return ["--nginx-webroot-container", container or self.web.name,
                "--nginx-webroot-engine", self.web.engine.name,
                "--nginx-webroot-path", webroot or self.web.webroot]

    def run(self, *args, check=True, env=None, cwd=None):
        return super().run(*args, check=check, env=env or self.web.engine.env, cwd=cwd)

    def live(self, name, what="fullchain.pem"):
        return os.path.join(self.web.letsencrypt, "live", name, what)


@pytest.fixture
def web(engine, request):
    container = containerlab.NginxContainer(
        engine, "web-" + re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[5:40].strip("-"))
    container.write("conf.d/site.conf", SITE)
    yield container.start()
    container.remove()


@pytest.fixture
def certbot(acme, web, tmp_path):
    return ContainerCertbot(str(tmp_path / "certbot"), acme, web)


def conf_d(web):
    """Every file under conf.d/ by name (what the plugin may edit)."""
    return {name: open(os.path.join(web.conf_d, name), "rb").read()
            for name in sorted(os.listdir(web.conf_d))}


def issue(certbot, *extra, check=True):
    return certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                       "-d", NAME, *extra, check=check)


def test_issue_install_and_renew_with_one_reload(engine, web, certbot, capsys):
    issue_install_and_renew(engine, web, certbot, capsys, "host network")


def test_through_published_ports(engine, acme, tmp_path, capsys):
    """A container on the engine's bridge, its ports published (compose's
    ports:): the self-check and the check that the new certificate is
    served reach nginx through them."""
    if not containerlab.own_network():
        pytest.skip("published ports need a network namespace of the tests' own")
    ports = [f"{lab.HTTP_PORT}:{lab.HTTP_PORT}", f"{lab.HTTPS_PORT}:{lab.HTTPS_PORT}"]
    web = containerlab.NginxContainer(engine, "web-published-ports", publish=ports)
    certbot = ContainerCertbot(str(tmp_path / "certbot"), acme, web)
    web.write("conf.d/site.conf", SITE)
    try:
        web.start()
        assert engine.cli("inspect", "--format", "{{.HostConfig.NetworkMode}}",
                          web.name).stdout.strip() != "host"
        issue_install_and_renew(engine, web, certbot, capsys, "published ports")
    finally:
        web.remove()


def issue_install_and_renew(engine, web, certbot, capsys, how):
    started = time.monotonic()
    issue(certbot)
    issued_in = time.monotonic() - started
    first = lab.leaf_der(certbot.live(NAME))
    assert lab.served_cert_der(NAME) == first
    site = conf_d(web)["site.conf"].decode()
    # the paths as nginx in the container sees them, not this machine's
    assert site.count("location ^~ /.well-known/acme-challenge/") == 1
    assert "/usr/share/nginx/html" in site
    assert f"ssl_certificate /etc/letsencrypt/live/{NAME}/fullchain.pem;" in site
    assert f"ssl_certificate_key /etc/letsencrypt/live/{NAME}/privkey.pem;" in site
    assert f"include /etc/letsencrypt/{tls.SNIPPET_NAME};" in site
    assert web.dir not in site
    # the image's nginx.conf untouched: nothing was added to the files in the image
    assert web.exec("cat", "/etc/nginx/nginx.conf").stdout == containerlab.IMAGE_NGINX_CONF
    stored = configobj.ConfigObj(os.path.join(web.letsencrypt, "renewal", NAME + ".conf"))
    assert stored["renewalparams"]["nginx_webroot_container"] == web.name
    assert stored["renewalparams"]["nginx_webroot_engine"] == engine.name
    assert lab.https_get(NAME, "/")[0] == 200

    before, reloads = conf_d(web), web.reloads()
    pid = engine.cli("inspect", "--format", "{{.State.Pid}}", web.name).stdout
    started = time.monotonic()
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
    renewed_in = time.monotonic() - started
    assert web.reloads() - reloads == 1
    assert conf_d(web) == before  # no edit
    renewed = lab.leaf_der(certbot.live(NAME))
    assert renewed != first
    assert lab.served_cert_der(NAME) == renewed  # live when certbot exited
    assert engine.cli("inspect", "--format", "{{.State.Pid}}", web.name).stdout == pid
    # the timer's run, nothing due: no reload, no edit
    certbot.run("renew", "--no-random-sleep-on-renew")
    assert web.reloads() - reloads == 1
    assert conf_d(web) == before
    with capsys.disabled():
        print(f"\n[{engine.name}, {how}] issue+install {issued_in:.1f} s, renew {renewed_in:.1f} s, "
              "reloads in renew: 1")


def refused(certbot, web, *extra, plugin_args=None):
    """An issue that must fail: certbot's output, nothing changed, nginx
    untouched (when it runs)."""
    before, reloads = conf_d(web), web.reloads()
    args = plugin_args if plugin_args is not None else certbot.plugin_args()
    proc = certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *args, "-d", NAME,
                       *extra, check=False)
    assert proc.returncode != 0
    assert conf_d(web) == before
    assert web.reloads() == reloads
    assert not os.path.exists(certbot.live(NAME))
    return proc.stdout + proc.stderr


def one_line_with(output, text):
    lines = [line for line in output.splitlines() if text in line]
    assert lines, output
    return lines[0]


def test_a_stopped_container_is_one_line(engine, web, certbot):
    web.stop()
    output = refused(certbot, web)
    line = one_line_with(output, "not running (start it")
    assert f"{engine.name} container '{web.name}'" in line
    assert engine.cli("inspect", "--format", "{{.State.Running}}",
                      web.name).stdout.strip() == "false"  # not started by certbot


def test_a_name_matching_no_container_is_one_line(engine, web, certbot):
    output = refused(certbot, web, plugin_args=certbot.plugin_args(container="no-such-web"))
    one_line_with(output, f"no {engine.name} container is named 'no-such-web'")
    assert lab.http_get(NAME, "/") == (200, b"app\n")


def test_a_webroot_not_mounted_names_the_mount_to_add(engine, web, certbot, tmp_path):
    elsewhere = str(tmp_path / "acme-webroot")
    output = refused(certbot, web, plugin_args=certbot.plugin_args(webroot=elsewhere))
    line = one_line_with(output, "is not mounted into")
    assert f"-v {os.path.dirname(elsewhere)}:{os.path.dirname(elsewhere)}" in line or \
        f"-v {elsewhere}:{elsewhere}" in line
    assert not os.path.exists(elsewhere)  # refused before a challenge file was written
    assert lab.http_get(NAME, "/") == (200, b"app\n")


def test_nginx_t_failing_in_the_container_is_one_line(engine, web, certbot):
    web.write("conf.d/zz-bad.conf", "server {\n    listen {http};\n    proxy_passs x;\n}\n")
    output = refused(certbot, web)
    line = one_line_with(output, 'unknown directive "proxy_passs"')
    assert "/etc/nginx/conf.d/zz-bad.conf:3" in line
    assert lab.http_get(NAME, "/") == (200, b"app\n")  # still serving what it loaded


def site_on(address, name):
    return ("server {\n    listen %s:{http};\n    server_name %s;\n"
            "    location / {\n        return 200 \"%s\\n\";\n    }\n}\n" % (address, name, name))


def test_a_renew_run_over_a_container_and_a_local_nginx_reloads_each_once(
        engine, acme, nginx, tmp_path):
    """Two lineages served by nginx in the container (on 127.0.0.2), one by
    a local nginx (on 127.0.0.1), all in one certbot configuration: one
    renew run reloads each nginx once, each after its own lineages."""
    in_container, local = ["c1.example", "c2.example"], "l.example"
    web = containerlab.NginxContainer(engine, "web-beside-a-local-nginx")
    certbot = ContainerCertbot(str(tmp_path / "certbot"), acme, web)
    local_args = ["--nginx-webroot-server-root", nginx.prefix, "--nginx-webroot-ctl",
                  lab.nginx_binary(), "--nginx-webroot-path", nginx.webroot]
    try:
        for name in in_container:
            web.write(f"conf.d/{name}.conf", site_on("127.0.0.2", name))
            acme.resolve(name, "127.0.0.2")
        web.start(wait_port=None)
        lab.wait_port("127.0.0.2", lab.HTTP_PORT)
        nginx.write("sites/local.conf", site_on("127.0.0.1", local))
        nginx.start()
        for name in in_container:
            certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *certbot.plugin_args(),
                        "--cert-name", name, "-d", name)
        certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *local_args,
                    "--cert-name", local, "-d", local)
        before = conf_d(web), nginx.snapshot()
        reloads = web.reloads(), nginx.reloads()
        certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
        assert (web.reloads() - reloads[0], nginx.reloads() - reloads[1]) == (1, 1)
        assert (conf_d(web), nginx.snapshot()) == before
        for name in in_container:
            assert lab.served_cert_der(name, host="127.0.0.2") == \
                lab.leaf_der(certbot.live(name)), name
        assert lab.served_cert_der(local) == lab.leaf_der(certbot.live(local))
    finally:
        for name in in_container:
            acme.resolve(name, None)
        web.remove()


class ConfigInTheImage(containerlab.NginxContainer):
    """A container whose conf.d/ is on no volume: the site is in the
    container's own file system (a custom image's COPY, or an edit made in
    the container), which certbot on this machine cannot write."""

    VOLUMES = tuple(v for v in containerlab.NginxContainer.VOLUMES if v[0] != "conf.d")


def test_a_configuration_in_the_image_is_refused_naming_the_volume_to_add(engine, acme,
                                                                          tmp_path):
    web = ConfigInTheImage(engine, "web-config-in-the-image")
    certbot = ContainerCertbot(str(tmp_path / "certbot"), acme, web)
    site = web.write("site.conf", SITE)
    os.makedirs(web.conf_d)  # on no volume: stays empty
    try:
        web.start(wait_port=None)
        engine.cli("cp", site, f"{web.name}:/etc/nginx/conf.d/site.conf")
        web.exec("nginx", "-s", "reload")
        lab.wait_port("127.0.0.1", lab.HTTP_PORT)
        in_container = web.exec("cat", "/etc/nginx/conf.d/site.conf").stdout
        output = refused(certbot, web)
        line = one_line_with(output, "cannot edit /etc/nginx/conf.d/site.conf")
        assert "-v /etc/nginx/conf.d:/etc/nginx/conf.d" in line
        assert web.exec("cat", "/etc/nginx/conf.d/site.conf").stdout == in_container
        assert lab.http_get(NAME, "/") == (200, b"app\n")
    finally:
        web.remove()


class CertificatesNotMounted(containerlab.NginxContainer):
    """A container that does not mount certbot's configuration directory."""

    VOLUMES = tuple(v for v in containerlab.NginxContainer.VOLUMES if v[0] != "letsencrypt")


def test_certificates_not_mounted_are_refused_naming_the_volume_to_add(engine, acme,
                                                                       tmp_path):
    web = CertificatesNotMounted(engine, "web-certificates-not-mounted")
    certbot = ContainerCertbot(str(tmp_path / "certbot"), acme, web)
    web.write("conf.d/site.conf", SITE)
    os.makedirs(web.letsencrypt)  # certbot's, on this machine only
    try:
        web.start()
        output = refused(certbot, web)
        line = one_line_with(output, f"{web.letsencrypt} is not mounted into")
        assert f"-v {web.letsencrypt}:{web.letsencrypt}" in line
        assert lab.http_get(NAME, "/") == (200, b"app\n")
    finally:
        web.remove()


def test_the_engine_is_found_when_not_named(engine, web, certbot):
    """Without --nginx-webroot-engine: the engine installed here that has
    a container by that name."""
    args = [a for a in certbot.plugin_args() if a not in ("--nginx-webroot-engine", engine.name)]
    certbot.run("-a", "nginx-webroot", "-i", "nginx-webroot", *args, "-d", NAME)
    assert lab.served_cert_der(NAME) == lab.leaf_der(certbot.live(NAME))
    stored = configobj.ConfigObj(os.path.join(web.letsencrypt, "renewal", NAME + ".conf"))
    assert "nginx_webroot_engine" not in stored["renewalparams"]


def test_renew_from_a_crontab(engine, web, certbot):
    """A root crontab's environment: PATH=/usr/bin:/bin (no /usr/local/bin,
    /usr/sbin), cwd /: the engine is still found, one reload."""
    issue(certbot)
    reloads = web.reloads()
    cron = dict(engine.env, PATH="/usr/bin:/bin")
    certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew", env=cron, cwd="/")
    assert web.reloads() - reloads == 1
    assert lab.served_cert_der(NAME) == lab.leaf_der(certbot.live(NAME))


@pytest.mark.parametrize("first", ["script", "init"])
def test_nginx_started_by_an_entrypoint_or_init_renews_with_one_reload(engine, acme, tmp_path,
                                                                       first):
    """nginx not the container's first process (an entrypoint shell script,
    or the engine's --init): the reload still signals nginx's master, once."""
    web = containerlab.NginxContainer(engine, f"web-first-{first}", first=first)
    certbot = ContainerCertbot(str(tmp_path / "certbot"), acme, web)
    web.write("conf.d/site.conf", SITE)
    try:
        web.start()
        issue(certbot)
        before, reloads = conf_d(web), web.reloads()
        certbot.run("renew", "--force-renewal", "--no-random-sleep-on-renew")
        assert web.reloads() - reloads == 1
        assert conf_d(web) == before
        assert lab.served_cert_der(NAME) == lab.leaf_der(certbot.live(NAME))
    finally:
        web.remove()


def test_a_first_dry_run_leaves_every_file_as_it_was(engine, web, certbot):
    """certonly --dry-run before any real run: the challenge location for
    the run only (a temporary edit), served, then undone: two reloads, every
    file byte-identical after, no certificate saved."""
    before, reloads = conf_d(web), web.reloads()
    certbot.run("certonly", "--dry-run", "-a", "nginx-webroot", *certbot.plugin_args(),
                "-d", NAME)
    assert conf_d(web) == before
    assert web.reloads() - reloads == 2
    assert not os.path.exists(certbot.live(NAME))
    assert lab.http_get(NAME, "/") == (200, b"app\n")
