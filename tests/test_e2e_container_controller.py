"""The container controller alone against real Docker and real Podman: nginx
in a container of the lab image (containerlab), with --network host on the
tests' loopback (or published ports), as the container's first process,
under an entrypoint script, and under the engine's --init (tini).  No
certbot here: what the controller does to nginx, and the one line each
fault it owns gives (issue 22, item 7)."""
import os
import shutil
import subprocess
import tempfile

import pytest

import containerlab
import lab
from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers.container import ContainerNginx
from certbot_nginx_webroot.controllers.engine_cli import EngineCli
from certbot_nginx_webroot.problems import NotInstalled, Problem

pytestmark = pytest.mark.e2e
engine = containerlab.engine_fixture()

NAME = "web-e2e"


def site(text):
    return "server {\n    listen 127.0.0.1:{http};\n    %s\n}\n" % text


@pytest.fixture(params=sorted(containerlab.NginxContainer.FIRST))
def web(engine, request):
    container = containerlab.NginxContainer(engine, NAME, first=request.param)
    container.write("conf.d/site.conf", site('return 200 "one\\n";'))
    yield container.start()
    container.remove()


def control(engine, name=NAME):
    return ContainerNginx(name, EngineCli(engine.name, engine.env))


def state_pid(engine, name=NAME):
    return engine.cli("inspect", "--format", "{{.Id}} {{.State.Pid}}", name).stdout.split()


def test_reload_changes_what_nginx_serves_without_a_restart(engine, web):
    ctl = control(engine)
    ctl.check_installed()
    ctl.check_running()
    ctl.test()
    assert ctl.build_info().option("conf-path") == "/etc/nginx/nginx.conf"
    assert ctl.prefix() == "/usr/share/nginx"  # Debian's build
    before = state_pid(engine)
    assert lab.http_get("a", "/") == (200, b"one\n")
    web.write("conf.d/site.conf", site('return 200 "two\\n";'))
    ctl.reload(timeout=20)
    # reload() returned once only new workers take connections
    assert [lab.http_get("a", "/") for _ in range(20)] == [(200, b"two\n")] * 20
    assert web.reloads() == 1
    assert state_pid(engine) == before  # the same container, the same first process


def test_nginx_t_failure_is_nginx_complaint_with_the_containers_path(engine, web):
    web.write("conf.d/bad.conf", site("proxy_passs x;"))
    with pytest.raises(NginxError) as err:
        control(engine).test()
    assert "unknown directive \"proxy_passs\" in /etc/nginx/conf.d/bad.conf:3" in str(err.value)
    assert "\n" not in str(err.value)
    assert web.reloads() == 0


def test_paths_go_through_the_mounts(engine, web):
    ctl = control(engine)
    conf = ctl.local_path("/etc/nginx/conf.d/site.conf")
    assert conf == web.host_path("conf.d/site.conf") and os.path.isfile(conf)
    # a file written where local_path says is what nginx serves from its own path
    with open(ctl.local_path("/usr/share/nginx/html/probe.txt"), "w") as f:
        f.write("through the volume\n")
    os.chmod(web.host_path("html/probe.txt"), 0o644)
    web.write("conf.d/site.conf", site("root /usr/share/nginx/html;"))
    ctl.reload(timeout=20)
    assert lab.http_get("a", "/probe.txt") == (200, b"through the volume\n")
    assert ctl.nginx_path(os.path.join(web.letsencrypt, "live", "a", "fullchain.pem")) == \
        "/etc/letsencrypt/live/a/fullchain.pem"
    with pytest.raises(Problem) as err:
        ctl.local_path("/etc/nginx/nginx.conf")
    assert "-v /etc/nginx:/etc/nginx" in str(err.value)
    with pytest.raises(Problem) as err:
        ctl.nginx_path("/var/lib/elsewhere/live/a/privkey.pem")
    assert "add -v /var/lib/elsewhere:/var/lib/elsewhere" in str(err.value)


def test_config_dump_reads_the_files_in_the_image(engine, web):
    dump = control(engine).config_dump()
    assert sorted(dump) == ["/etc/nginx/conf.d/site.conf", "/etc/nginx/mime.types",
                            "/etc/nginx/nginx.conf"]
    assert dump["/etc/nginx/nginx.conf"] == containerlab.IMAGE_NGINX_CONF
    with open(web.host_path("conf.d/site.conf")) as f:
        assert dump["/etc/nginx/conf.d/site.conf"] == f.read()
    web.write("conf.d/site.conf", site("return 204;").rstrip("\n"))  # no final newline
    assert control(engine).config_dump()["/etc/nginx/conf.d/site.conf"] == \
        site("return 204;").rstrip("\n").replace("{http}", str(lab.HTTP_PORT))


def test_reach_on_the_host_network(engine, web):
    assert control(engine).reach("127.0.0.1", lab.HTTP_PORT) == ("127.0.0.1", lab.HTTP_PORT)


def test_stopped_container_is_one_line_and_stays_stopped(engine, web):
    web.stop()
    with pytest.raises(NotInstalled) as err:
        control(engine).check_installed()
    assert str(err.value).startswith(f"{engine.name} container '{NAME}' is exited, not running")
    with pytest.raises(NotRunning) as err:
        control(engine).reload(timeout=5)
    assert str(err.value).startswith(f"nginx is not running: {engine.name} container '{NAME}' "
                                     "is exited")
    assert engine.cli("inspect", "--format", "{{.State.Running}}", NAME).stdout.strip() \
        == "false"


def test_missing_container_and_unknown_name(engine, web):
    with pytest.raises(NotInstalled) as err:
        control(engine, "web-e2e-typo").check_installed()
    assert str(err.value) == (f"no {engine.name} container is named 'web-e2e-typo' "
                              f"(`{engine.name} ps -a` lists their names)")
    # the engine's inspect also takes an id prefix: not a name
    cid = state_pid(engine)[0]
    with pytest.raises(NotInstalled):
        control(engine, cid[:6]).check_installed()
    engine.cli("rm", "-f", NAME)
    with pytest.raises(NotInstalled) as err:
        control(engine).check_installed()
    assert f"no {engine.name} container is named '{NAME}'" in str(err.value)


def test_compose_service_name_names_its_container(engine):
    service = containerlab.NginxContainer(
        engine, "shop-web-1", extra_args=["--label", "com.docker.compose.service=web",
                                          "--label", "com.docker.compose.project=shop"])
    try:
        service.write("conf.d/site.conf", site("return 204;"))
        service.start()
        with pytest.raises(NotInstalled) as err:
            control(engine, "web").check_installed()
        assert str(err.value) == (f"no {engine.name} container is named 'web' (compose's "
                                  "service 'web' runs as 'shop-web-1': name the container)")
        control(engine, "shop-web-1").check_running()
    finally:
        service.remove()


def test_recreated_container_matches_by_name(engine, web):
    old_ctl = control(engine)
    old_ctl.check_running()
    old_id = state_pid(engine)[0]
    engine.cli("rm", "-f", NAME)
    engine.cli(*web.run_args())
    lab.wait_port("127.0.0.1", lab.HTTP_PORT)
    ctl = control(engine)
    ctl.check_running()
    assert state_pid(engine)[0] != old_id
    # a run that inspected the old one does not drive the new one
    with pytest.raises(NginxError):
        old_ctl.check_running()


def test_unreadable_socket_is_one_line(engine, web):
    if engine.name == "podman":
        env = dict(engine.env, CONTAINER_HOST="unix:///nonexistent/podman.sock")
        with pytest.raises(NotInstalled) as err:
            ContainerNginx(NAME, EngineCli("podman", env)).check_installed()
        assert str(err.value) == (f"cannot reach nginx's podman container '{NAME}': no podman "
                                  "daemon socket at /nonexistent/podman.sock (is the daemon "
                                  "running? CONTAINER_HOST names another)")
        return
    # As a user who may not use the docker socket (not root, not in its group).
    code = ("import sys\nfrom certbot_nginx_webroot.controllers.container import ContainerNginx\n"
            "from certbot_nginx_webroot.controllers.engine_cli import EngineCli\n"
            "try:\n    ContainerNginx(sys.argv[1], EngineCli('docker')).check_installed()\n"
            "except Exception as err:\n    print(type(err).__name__, err)\n")
    # That user may not read the checkout or the venv (under /root): the
    # package is copied where it can, and run by the system's python3.
    readable = tempfile.mkdtemp()  # pytest's tmp_path is under a 0700 directory
    try:
        shutil.copytree(os.path.join(lab.PLUGIN_PATH, "certbot_nginx_webroot"),
                        os.path.join(readable, "certbot_nginx_webroot"))
        os.chmod(readable, 0o755)
        env = dict(engine.env, PYTHONPATH=readable, HOME="/nonexistent")
        proc = subprocess.run(["/usr/bin/python3", "-c", code, NAME], env=env, cwd="/",
                              capture_output=True, text=True, user=65534, group=65534,
                              extra_groups=[])
    finally:
        shutil.rmtree(readable)
    assert proc.stdout.strip() == (
        f"NotInstalled cannot reach nginx's docker container '{NAME}': the docker socket "
        f"{engine.socket} is not readable by uid 65534 (run certbot as root or a member of "
        "the socket's group; in a container of its own, mount the socket into it)"), proc.stderr
    assert engine.cli("inspect", "--format", "{{.State.Running}}", NAME).stdout.strip() == "true"


@pytest.fixture
def published(engine):
    """nginx on port 80 in a network of the container's own, published on
    the host at the lab's HTTP port.  The engine makes a bridge for it:
    only in a network namespace of the tests' own (.ci/run has one per
    suite), never on this machine's network."""
    if not containerlab.own_network():
        pytest.skip("published ports need a network namespace of the tests' own "
                    "(unshare -n): the engine makes a bridge")
    container = containerlab.NginxContainer(engine, "web-published",
                                            publish=[f"127.0.0.1:{lab.HTTP_PORT}:80"])
    container.write("conf.d/site.conf", 'server {\n    listen 80;\n    return 200 "one\\n";\n}\n')
    yield container.start()
    container.remove()


def test_reach_and_reload_through_published_ports(engine, published):
    ctl = control(engine, "web-published")
    assert ctl.reach("*", 80) == ("127.0.0.1", lab.HTTP_PORT)
    addr, port = ctl.reach("*", 80)
    assert lab.http_get("a", "/", port=port) == (200, b"one\n")
    published.write("conf.d/site.conf", 'server {\n    listen 80;\n    return 200 "two\\n";\n}\n')
    ctl.reload(timeout=20)
    assert lab.http_get("a", "/", port=port) == (200, b"two\n")
    with pytest.raises(Problem) as err:
        ctl.reach("*", 443)
    assert "listens on port 443, which the container does not publish: add -p 443:443" \
        in str(err.value)


def test_daemon_not_answering_is_one_line(engine, tmp_path):
    """A socket that is there but nothing answers on it, as a daemon that
    died leaves it (podman: its service, which CONTAINER_HOST names)."""
    import socket
    path = str(tmp_path / "engine.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # not listening: connections are refused
    variable = "DOCKER_HOST" if engine.name == "docker" else "CONTAINER_HOST"
    try:
        env = dict(engine.env, **{variable: "unix://" + path})
        with pytest.raises(NotInstalled) as err:
            ContainerNginx(NAME, EngineCli(engine.name, env)).check_installed()
    finally:
        dead.close()
    assert str(err.value).startswith(f"cannot ask {engine.name} about nginx's container "
                                     f"'{NAME}': Cannot connect to ")
    assert "\n" not in str(err.value)


def issue(lineage_dir, n):
    """Version n of a lineage, as certbot writes it: archive/ files, live/
    links to them."""
    archive = os.path.join(lineage_dir, "archive", "a.org")
    live = os.path.join(lineage_dir, "live", "a.org")
    os.makedirs(archive, exist_ok=True)
    os.makedirs(live, exist_ok=True)
    cert, key = (os.path.join(archive, f"{what}{n}.pem") for what in ("fullchain", "privkey"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", f"/CN=a.org {n}",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    for what in ("fullchain", "privkey"):
        link = os.path.join(live, f"{what}.pem")
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(f"../../archive/a.org/{what}{n}.pem", link)
    return cert


def test_certificate_through_the_live_link_renews_with_a_reload(engine, web):
    ctl = control(engine)
    first = issue(web.letsencrypt, 1)
    live = os.path.join(web.letsencrypt, "live", "a.org")
    cert = ctl.nginx_path(os.path.join(live, "fullchain.pem"))
    key = ctl.nginx_path(os.path.join(live, "privkey.pem"))
    assert (cert, key) == ("/etc/letsencrypt/live/a.org/fullchain.pem",
                           "/etc/letsencrypt/live/a.org/privkey.pem")
    web.write("conf.d/tls.conf", "server {\n    listen 127.0.0.1:{https} ssl;\n"
              f"    server_name a.org;\n    ssl_certificate {cert};\n"
              f"    ssl_certificate_key {key};\n    return 204;\n}}\n")
    ctl.test()
    ctl.reload(timeout=20)
    assert lab.served_cert_der("a.org") == lab.leaf_der(first)
    second = issue(web.letsencrypt, 2)  # a renewal: no edit, one reload
    ctl.reload(timeout=20)
    assert lab.served_cert_der("a.org") == lab.leaf_der(second)


def test_local_path_follows_an_absolute_link_as_nginx_in_the_container_does(engine, web):
    # conf.d/linked.conf -> /usr/share/nginx/html/real.conf: a path in the
    # container (the webroot volume); on this machine that path is another file.
    web.write("html/real.conf", site('return 200 "linked\\n";').replace(
        "127.0.0.1:{http}", "127.0.0.1:{backend}"))
    os.symlink("/usr/share/nginx/html/real.conf", web.host_path("conf.d/linked.conf"))
    ctl = control(engine)
    assert ctl.local_path("/etc/nginx/conf.d/linked.conf") == web.host_path("html/real.conf")
    ctl.reload(timeout=20)
    assert lab.http_get("a", "/", port=lab.BACKEND_PORT) == (200, b"linked\n")
    with open(ctl.local_path("/etc/nginx/conf.d/linked.conf")) as f:
        assert f.read() == ctl.config_dump()["/etc/nginx/conf.d/linked.conf"]
