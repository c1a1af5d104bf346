"""The container controller without an engine: a fake engine CLI handed to
ContainerNginx, the inspect data and /proc listings as Docker and Podman
write them.  The /proc scripts themselves run for real here, with sh on
this machine's own /proc (the container's is read the same way)."""
import json
import os
import subprocess
import time

import pytest

from certbot_nginx_webroot.controllers import NginxError, NotRunning
from certbot_nginx_webroot.controllers import container_inspect as inspect
from certbot_nginx_webroot.controllers import container_procs as procs
from certbot_nginx_webroot.controllers.container import ContainerNginx
from certbot_nginx_webroot.controllers.engine_cli import EngineCli
from certbot_nginx_webroot.problems import NotInstalled, Problem

NGINX = "/usr/sbin/nginx"
CONTAINER_ID = "4f1c" + "0" * 60

# What `nginx -V` prints in the official image (abridged).
NGINX_V = ("nginx version: nginx/1.27.3\nbuilt by gcc 12.2.0 (Debian 12.2.0-14)\n"
           "configure arguments: --prefix=/etc/nginx --sbin-path=/usr/sbin/nginx "
           "--conf-path=/etc/nginx/nginx.conf --pid-path=/var/run/nginx.pid "
           "--with-http_ssl_module --with-http_v2_module\n")


def stat_line(pid, ppid, start, state="S"):
    """/proc/PID/stat as the kernel writes it (fields after comm: state,
    ppid, ..., starttime 20th)."""
    return (f"{pid} (nginx) {state} {ppid} 1 1 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
            f"{start} 11000000 1000 18446744073709551615")


def inspect_data(name="web", running=True, status="running", network="host", ports=None,
                 mounts=None, paused=False, cid=CONTAINER_ID):
    return {"Id": cid, "Name": "/" + name,
            "State": {"Running": running, "Paused": paused, "Status": status},
            "HostConfig": {"NetworkMode": network},
            "NetworkSettings": {"Ports": ports or {}},
            "Mounts": mounts if mounts is not None else [
                {"Type": "bind", "Source": "/srv/web/conf.d", "Destination": "/etc/nginx/conf.d",
                 "RW": True},
                {"Type": "bind", "Source": "/etc/letsencrypt", "Destination": "/etc/letsencrypt",
                 "RW": False},
                {"Type": "volume", "Name": "webroot",
                 "Source": "/var/lib/docker/volumes/webroot/_data",
                 "Destination": "/usr/share/nginx/html", "RW": True}]}


class Result:
    def __init__(self, returncode=0, stdout="", stderr=""):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


class FakeEngine:
    """The engine CLI as ContainerNginx calls it, over a fake container:
    inspect data, a process table (pid -> (ppid, start, exe, title)) that a
    SIGHUP to the master turns over as nginx does, and nginx's answers."""

    kind = "docker"
    engine = "docker"

    def __init__(self, containers=None, table=None, installed=True, socket=None,
                 nginx_t=(0, "", "nginx: configuration file /etc/nginx/nginx.conf test is "
                          "successful\n"), reloads_take=1):
        self.containers = [inspect_data()] if containers is None else containers
        self.table = table if table is not None else {
            1: (0, "500", NGINX, "nginx: master process nginx -g daemon off;"),
            29: (1, "510", NGINX, "nginx: worker process")}
        self.installed, self.socket = installed, socket
        self.nginx_t = nginx_t
        self.calls = []
        self.signals = []
        self.reloads_take = reloads_take  # listings before the new workers show
        self.pending = None

    def binary(self):
        return "/usr/bin/docker" if self.installed else None

    def socket_problem(self):
        return self.socket

    def run(self, args, timeout=60):
        self.calls.append(list(args))
        if args[:1] == ["ps"]:
            service = args[3].rsplit("=", 1)[1]
            return Result(0, "".join(c["Name"].lstrip("/") + "\n" for c in self.containers
                                     if c.get("Config", {}).get("Labels", {}).get(
                                         "com.docker.compose.service") == service))
        if args[:2] == ["container", "inspect"]:
            found = [c for c in self.containers
                     if c["Name"].lstrip("/") == args[2] or c["Id"].startswith(args[2])]
            if not found:
                return Result(1, "[]\n", f"Error response from daemon: No such container: "
                                          f"{args[2]}\n")
            return Result(0, json.dumps(found))
        assert args[0] == "exec" and args[1] == CONTAINER_ID, args
        command = args[2:]
        if command[:2] == ["sh", "-c"] and command[2] == procs.PS_SCRIPT:
            return Result(0, self.listing())
        if command[:2] == ["sh", "-c"] and command[2] == procs.SIGNAL_SCRIPT:
            return self.signal(int(command[4]), command[5], command[6])
        if command[:1] == ["nginx"] and command[-1] == "-t":
            return Result(self.nginx_t[0], "", self.nginx_t[1])
        if command == ["nginx", "-V"]:
            return Result(0, "", NGINX_V)
        raise AssertionError(f"unexpected engine call {args}")

    def listing(self):
        if self.pending is not None:
            self.pending -= 1
            if self.pending <= 0:
                self.turn_over()
        lines = [f"N\t{NGINX}"]
        for pid, (ppid, start, exe, title) in sorted(self.table.items()):
            lines.append(f"P\t{pid}\t{exe}\t{title} \t{stat_line(pid, ppid, start)}")
        return "\n".join(lines) + "\n"

    def signal(self, pid, start, signame):
        ppid, real_start, _, title = self.table.get(pid, (0, "", "", ""))
        if real_start != start or not title.startswith("nginx: master process"):
            return Result(procs.CHANGED)
        self.signals.append((pid, signame))
        self.pending = self.reloads_take
        return Result(0)

    def turn_over(self):
        """What a master does on SIGHUP: old workers shut down, new start."""
        self.pending = None
        master = next(pid for pid, row in self.table.items()
                      if row[3].startswith("nginx: master process"))
        new = max(self.table) + 1
        for pid, (ppid, start, exe, title) in list(self.table.items()):
            if ppid == master and title == "nginx: worker process":
                self.table[pid] = (ppid, start, exe, "nginx: worker process is shutting down")
        self.table[new] = (master, "900", NGINX, "nginx: worker process")


def controller(engine=None, name="web"):
    return ContainerNginx(name, engine or FakeEngine())


# -- finding the container ---------------------------------------------------

def test_identity_names_engine_and_container():
    assert controller().identity == ("container", "docker", "web")


def test_engine_not_installed_is_one_line():
    with pytest.raises(NotInstalled) as err:
        controller(FakeEngine(installed=False)).check_installed()
    assert "'docker' not found" in str(err.value) and "\n" not in str(err.value)


def test_unreadable_socket_is_one_line_before_any_engine_call():
    engine = FakeEngine(
        socket="the docker socket /var/run/docker.sock is not readable by uid 1000")
    with pytest.raises(NotInstalled) as err:
        controller(engine).check_installed()
    assert "/var/run/docker.sock is not readable" in str(err.value)
    assert engine.calls == []


def test_missing_container_is_named():
    with pytest.raises(NotInstalled) as err:
        controller(FakeEngine(containers=[]), name="nginx-1").check_installed()
    assert str(err.value) == ("no docker container is named 'nginx-1' "
                              "(`docker ps -a` lists their names)")


def test_a_compose_service_name_points_to_its_container():
    web = inspect_data(name="shop-web-1")
    web["Config"] = {"Labels": {"com.docker.compose.service": "web",
                                "com.docker.compose.project": "shop"}}
    with pytest.raises(NotInstalled) as err:
        controller(FakeEngine(containers=[web]), name="web").check_installed()
    assert str(err.value) == ("no docker container is named 'web' (compose's service 'web' "
                              "runs as 'shop-web-1': name the container)")


def test_engine_failing_is_not_a_missing_container():
    class DaemonDown(FakeEngine):
        def run(self, args, timeout=60):
            return Result(1, "", "Cannot connect to the Docker daemon at "
                                 "unix:///var/run/docker.sock. Is the docker daemon running?\n")
    with pytest.raises(NotInstalled) as err:
        controller(DaemonDown()).check_installed()
    assert str(err.value) == ("cannot ask docker about nginx's container 'web': Cannot connect "
                              "to the Docker daemon at unix:///var/run/docker.sock. Is the "
                              "docker daemon running?")


def test_a_name_matching_only_an_id_prefix_is_no_container():
    # `docker inspect 4f1c` finds the container with that id prefix: it is
    # not named so, and a name must not match another container.
    with pytest.raises(NotInstalled) as err:
        controller(name="4f1c").check_installed()
    assert "no docker container is named '4f1c'" in str(err.value)


@pytest.mark.parametrize("state, says", [
    (dict(running=False, status="exited"), "is exited, not running"),
    (dict(running=False, status="created"), "is created, not running"),
    (dict(paused=True), "is paused"),
])
def test_container_not_running_is_one_line(state, says):
    engine = FakeEngine(containers=[inspect_data(**state)])
    with pytest.raises(NotInstalled) as err:
        controller(engine).check_installed()
    assert str(err.value).startswith("docker container 'web' " + says)
    assert not any(call[0] == "exec" for call in engine.calls)


def test_stopped_container_is_nginx_not_running():
    engine = FakeEngine(containers=[inspect_data(running=False, status="exited")])
    with pytest.raises(NotRunning) as err:
        controller(engine).check_running()
    assert str(err.value).startswith("nginx is not running: docker container 'web' is exited")
    assert not any(call[0] == "exec" for call in engine.calls)


def test_commands_go_to_the_id_first_inspected():
    engine = FakeEngine()
    ctl = controller(engine)
    ctl.check_running()
    ctl.test()
    assert [c[:2] for c in engine.calls if c[0] == "exec"] == [["exec", CONTAINER_ID]] * 3
    assert sum(c[:2] == ["container", "inspect"] for c in engine.calls) == 1


# -- nginx -t and -V ---------------------------------------------------------

def test_nginx_t_failure_carries_nginx_complaint():
    engine = FakeEngine(nginx_t=(1, "2026/12/03 10:00:00 [emerg] 1#1: unknown directive "
                                    "\"proxy_passs\" in /etc/nginx/conf.d/a.conf:3\n"
                                    "nginx: configuration file /etc/nginx/nginx.conf test "
                                    "failed\n"))
    with pytest.raises(NginxError) as err:
        controller(engine).test()
    assert str(err.value) == ("nginx -t failed in docker container 'web': [emerg] unknown "
                              "directive \"proxy_passs\" in /etc/nginx/conf.d/a.conf:3")


def test_nginx_t_runs_with_the_masters_conf_options():
    engine = FakeEngine(table={
        1: (0, "5", NGINX, "nginx: master process /usr/sbin/nginx -c /srv/conf/main.conf "
                           "-g daemon off;"),
        7: (1, "6", NGINX, "nginx: worker process")})
    ctl = controller(engine)
    ctl.test()
    assert engine.calls[-1][2:] == ["nginx", "-c", "/srv/conf/main.conf", "-t"]
    assert ctl.conf_path() == "/srv/conf/main.conf"


def test_build_info_is_asked_once():
    engine = FakeEngine()
    ctl = controller(engine)
    assert ctl.prefix() == "/etc/nginx"
    assert ctl.build_info().option("conf-path") == "/etc/nginx/nginx.conf"
    assert sum(c[2:] == ["nginx", "-V"] for c in engine.calls) == 1


# -- the master and the reload -------------------------------------------------

ENTRYPOINT_TABLE = {
    1: (0, "100", "/usr/bin/dash", "/bin/sh /docker-entrypoint.sh nginx -g daemon off;"),
    8: (1, "120", NGINX, "nginx: master process nginx -g daemon off;"),
    9: (8, "121", NGINX, "nginx: worker process"),
    10: (8, "121", NGINX, "nginx: worker process")}


@pytest.mark.parametrize("table", [None, ENTRYPOINT_TABLE], ids=["pid1", "entrypoint"])
def test_reload_signals_the_master_and_waits_for_new_workers(table):
    engine = FakeEngine(table=dict(table) if table else None, reloads_take=3)
    controller(engine).reload(timeout=10)
    master = 8 if table else 1
    assert engine.signals == [(master, "HUP")]
    # it returned only once the new worker showed and the old ones shut down
    assert engine.pending is None
    assert any(row[3] == "nginx: worker process is shutting down" for row in engine.table.values())


def test_reload_that_never_takes_is_an_error_naming_the_log():
    engine = FakeEngine(reloads_take=10 ** 6)
    with pytest.raises(NginxError) as err:
        controller(engine).reload(timeout=0.3)
    assert "did not start workers with the new configuration" in str(err.value)
    assert engine.signals == [(1, "HUP")]


def test_master_replaced_before_the_signal_is_not_signalled():
    engine = FakeEngine()
    ctl = controller(engine)
    master, _ = ctl._master()
    engine.table[1] = (0, "999", NGINX, master.title)  # same pid, another process
    with pytest.raises(NotRunning) as err:
        ctl.signal_master(master, "HUP")
    assert "changed while being signalled" in str(err.value)
    assert engine.signals == []


@pytest.mark.parametrize("table, says", [
    ({1: (0, "1", "/usr/bin/dash", "/bin/sh /entry.sh")},
     "no nginx master process runs in it (its processes: 1: /bin/sh /entry.sh)"),
    ({1: (0, "1", "/opt/other/nginx", "nginx: master process /opt/other/nginx")},
     "its nginx master (pid 1) runs /opt/other/nginx executable, not /usr/sbin/nginx"),
    ({5: (1, "1", NGINX, "nginx: master process nginx"),
      6: (1, "2", NGINX, "nginx: master process nginx")},
     "several nginx masters run in it (pids 5, 6: a binary upgrade?)"),
])
def test_no_usable_master_is_not_running(table, says):
    engine = FakeEngine(table=table)
    with pytest.raises(NotRunning) as err:
        controller(engine).check_running()
    assert str(err.value) == (f"nginx is not running in docker container 'web': {says}; "
                              "nothing was signalled")
    assert engine.signals == []


def test_conf_args_from_the_title():
    assert procs.conf_args("nginx: master process nginx -g daemon off;") == []
    assert procs.conf_args("nginx: master process /usr/sbin/nginx -p /srv/ -c conf/x.conf") \
        == ["-p", "/srv/", "-c", "conf/x.conf"]


# -- the scripts, run for real on this machine's /proc ------------------------

def run_script(script, *args):
    return subprocess.run(["sh", "-c", script, "sh", *args], capture_output=True, text=True)


def test_ps_script_lists_this_machines_processes():
    proc = run_script(procs.PS_SCRIPT)
    assert proc.returncode == 0, proc.stderr
    _, found = procs.parse_ps(proc.stdout)
    me = found[os.getpid()]
    assert me.ppid == os.getppid()
    assert os.path.realpath(me.exe) == os.path.realpath(os.readlink("/proc/self/exe"))
    with open(f"/proc/{os.getpid()}/stat") as f:
        assert me.start == f.read().rsplit(")", 1)[1].split()[19]


@pytest.fixture
def fake_master():
    """A process titled as nginx's master (sleep, run under that argv[0])."""
    proc = subprocess.Popen(["bash", "-c", 'exec -a "nginx: master process nginx" sleep 60'])
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:
            if f.read().startswith(b"nginx: master"):
                break
        time.sleep(0.01)
    yield proc
    proc.kill()
    proc.wait()


def start_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]


def test_signal_script_signals_the_process_checked(fake_master):
    proc = run_script(procs.SIGNAL_SCRIPT, str(fake_master.pid), start_of(fake_master.pid), "TERM")
    assert proc.returncode == 0, proc.stderr
    assert fake_master.wait(5) == -15


def test_signal_script_refuses_another_start_time(fake_master):
    wrong = str(int(start_of(fake_master.pid)) + 1)
    proc = run_script(procs.SIGNAL_SCRIPT, str(fake_master.pid), wrong, "TERM")
    assert proc.returncode == procs.CHANGED
    assert fake_master.poll() is None


def test_signal_script_refuses_a_process_not_titled_master():
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        proc = run_script(procs.SIGNAL_SCRIPT, str(sleeper.pid), start_of(sleeper.pid), "TERM")
        assert proc.returncode == procs.CHANGED
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


# -- mounts, ports ---------------------------------------------------------------

def test_local_path_through_the_longest_mount():
    ctl = controller()
    assert ctl.local_path("/etc/nginx/conf.d/site.conf") == "/srv/web/conf.d/site.conf"
    assert ctl.local_path("/usr/share/nginx/html/.well-known/x") == \
        "/var/lib/docker/volumes/webroot/_data/.well-known/x"
    nested = inspect_data(mounts=[
        {"Type": "bind", "Source": "/srv/etc", "Destination": "/etc/nginx"},
        {"Type": "bind", "Source": "/srv/sites", "Destination": "/etc/nginx/sites"}])
    assert inspect.host_path(nested, "/etc/nginx/sites/a.conf") == "/srv/sites/a.conf"
    assert inspect.host_path(nested, "/etc/nginx/sites") == "/srv/sites"
    assert inspect.host_path(nested, "/etc/nginx/sitesX/a.conf") == "/srv/etc/sitesX/a.conf"


def test_path_in_the_image_names_the_mount_to_add():
    with pytest.raises(Problem) as err:
        controller().local_path("/etc/nginx/nginx.conf")
    assert str(err.value) == (
        "/etc/nginx/nginx.conf (or a link on the way) is inside the image of docker container "
        "'web', on no volume this machine can reach: mount it, -v /etc/nginx:/etc/nginx "
        "(compose: volumes: - /etc/nginx:/etc/nginx)")


def test_tmpfs_is_not_reachable_from_here():
    info = inspect_data(mounts=[{"Type": "tmpfs", "Source": "", "Destination": "/run"}])
    assert inspect.host_path(info, "/run/nginx.pid") is None


def test_nginx_path_maps_back_and_names_the_letsencrypt_mount():
    same = lambda path: path  # noqa: E731  (no symbolic links in these paths)
    info = inspect_data()
    assert inspect.container_path(info, "/srv/web/conf.d/a.conf", same) == \
        "/etc/nginx/conf.d/a.conf"
    assert inspect.container_path(info, "/etc/letsencrypt/live/a/fullchain.pem", same) == \
        "/etc/letsencrypt/live/a/fullchain.pem"
    assert inspect.container_path(info, "/srv/other/x", same) is None
    assert inspect.mount_to_add("/srv/certbot/config/live/a.org/fullchain.pem", False) == \
        "/srv/certbot/config"
    assert inspect.mount_to_add("/var/www/acme", True) == "/var/www/acme"
    with pytest.raises(Problem) as err:
        controller(FakeEngine(containers=[inspect_data(mounts=[])])).nginx_path(
            "/etc/letsencrypt/live/a.org/privkey.pem")
    assert "add -v /etc/letsencrypt:/etc/letsencrypt" in str(err.value)


def lineage(config_dir):
    """A lineage as certbot lays it out: live/ links into ../../archive/."""
    archive = config_dir / "archive" / "a.org"
    live = config_dir / "live" / "a.org"
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    (archive / "fullchain1.pem").write_text("cert\n")
    os.symlink("../../archive/a.org/fullchain1.pem", live / "fullchain.pem")
    return live / "fullchain.pem"


def test_nginx_path_keeps_the_live_link(tmp_path):
    live = lineage(tmp_path / "letsencrypt")
    info = inspect_data(mounts=[{"Type": "bind", "Source": str(tmp_path / "letsencrypt"),
                                 "Destination": "/etc/letsencrypt"}])
    assert inspect.container_path(info, str(live)) == "/etc/letsencrypt/live/a.org/fullchain.pem"


def test_nginx_path_refuses_a_live_link_whose_archive_is_not_mounted(tmp_path):
    live = lineage(tmp_path / "letsencrypt")
    info = inspect_data(mounts=[{"Type": "bind", "Source": str(tmp_path / "letsencrypt/live"),
                                 "Destination": "/etc/letsencrypt/live"}])
    assert inspect.container_path(info, str(live)) is None
    with pytest.raises(Problem) as err:
        controller(FakeEngine(containers=[info])).nginx_path(str(live))
    assert f"add -v {tmp_path}/letsencrypt:{tmp_path}/letsencrypt" in str(err.value)


def test_nginx_path_hidden_under_a_nested_mount_is_not_mapped():
    info = inspect_data(mounts=[
        {"Type": "bind", "Source": "/srv/etc", "Destination": "/etc/nginx"},
        {"Type": "tmpfs", "Source": "", "Destination": "/etc/nginx/conf.d"}])
    assert inspect.container_path(info, "/srv/etc/conf.d/a.conf", lambda p: p) is None
    assert inspect.container_path(info, "/srv/etc/nginx.conf", lambda p: p) == \
        "/etc/nginx/nginx.conf"


def test_reach_on_the_host_network_is_as_nginx_listens():
    assert controller().reach("127.0.0.1", 5443) == ("127.0.0.1", 5443)


def test_reach_through_published_ports():
    engine = FakeEngine(containers=[inspect_data(network="bridge", ports={
        "443/tcp": [{"HostIp": "::", "HostPort": "8443"}, {"HostIp": "0.0.0.0",
                                                            "HostPort": "8443"}],
        "80/tcp": [{"HostIp": "::1", "HostPort": "8080"}], "8080/tcp": None})])
    ctl = controller(engine)
    assert ctl.reach("*", 443) == ("127.0.0.1", 8443)
    assert ctl.reach("*", 80) == ("[::1]", 8080)
    with pytest.raises(Problem) as err:
        ctl.reach("*", 8080)
    assert "listens on port 8080, which the container does not publish: add -p 8080:8080" \
        in str(err.value)


# -- the engine's socket ---------------------------------------------------------

def test_socket_rules(tmp_path):
    sock = tmp_path / "docker.sock"
    assert "no docker daemon socket at" in EngineCli(
        "docker", {"DOCKER_HOST": f"unix://{sock}"}).socket_problem()
    sock.write_text("")
    assert EngineCli("docker", {"DOCKER_HOST": f"unix://{sock}"}).socket_problem() is None
    assert EngineCli("docker", {"DOCKER_HOST": "tcp://10.0.0.1:2376"}).socket_path() is None
    assert EngineCli("docker", {}).socket_path() == "/var/run/docker.sock"
    assert EngineCli("/usr/bin/podman", {}).socket_path() is None
    assert EngineCli("podman", {"CONTAINER_HOST": f"unix://{sock}"}).socket_path() == str(sock)


def test_from_options_names_the_engine():
    ctl = ContainerNginx.from_options({"container": "proxy-nginx-1", "engine": "podman"})
    assert ctl.identity == ("container", "podman", "proxy-nginx-1")
    assert ctl.cli.engine == "podman"


def test_split_dump_gives_each_file_nginx_loaded():
    from certbot_nginx_webroot.controllers.container import split_dump
    text = ("# configuration file /etc/nginx/nginx.conf:\nevents {}\nhttp {\n"
            "    include /etc/nginx/conf.d/*.conf;\n}\n\n"
            "# configuration file /etc/nginx/conf.d/a.conf:\n# configuration file is x\n"
            "server { listen 80; }\n")
    # nginx writes a newline after each file: a.conf has none at its end
    assert split_dump(text) == {
        "/etc/nginx/nginx.conf": "events {}\nhttp {\n    include /etc/nginx/conf.d/*.conf;\n}\n",
        "/etc/nginx/conf.d/a.conf": "# configuration file is x\nserver { listen 80; }"}


def sites_volumes(tmp_path):
    """Debian's layout on two volumes: sites-enabled/ holds absolute links
    into sites-available/, as `ln -s /etc/nginx/sites-available/x` makes."""
    available, enabled = tmp_path / "available", tmp_path / "enabled"
    available.mkdir()
    enabled.mkdir()
    (available / "shop").write_text("server {}\n")
    return inspect_data(mounts=[
        {"Type": "bind", "Source": str(available), "Destination": "/etc/nginx/sites-available"},
        {"Type": "bind", "Source": str(enabled), "Destination": "/etc/nginx/sites-enabled"}])


def test_local_path_follows_links_as_the_container_does(tmp_path):
    info = sites_volumes(tmp_path)
    os.symlink("/etc/nginx/sites-available/shop", tmp_path / "enabled" / "shop")
    os.symlink("../sites-available/shop", tmp_path / "enabled" / "relative")
    # The absolute link means the container's file, never this machine's
    # /etc/nginx/sites-available/shop.
    assert inspect.host_file(info, "/etc/nginx/sites-enabled/shop") == \
        str(tmp_path / "available" / "shop")
    assert inspect.host_file(info, "/etc/nginx/sites-enabled/relative") == \
        str(tmp_path / "available" / "shop")
    assert inspect.host_file(info, "/etc/nginx/sites-enabled/new.conf") == \
        str(tmp_path / "enabled" / "new.conf")  # not there yet: to be created


def test_local_path_refuses_a_link_into_the_image(tmp_path):
    info = sites_volumes(tmp_path)
    os.symlink("/etc/nginx/conf.d/default.conf", tmp_path / "enabled" / "default")
    os.symlink("loop", tmp_path / "enabled" / "loop")
    assert inspect.host_file(info, "/etc/nginx/sites-enabled/default") is None
    assert inspect.host_file(info, "/etc/nginx/sites-enabled/loop") is None
    with pytest.raises(Problem) as err:
        controller(FakeEngine(containers=[info])).local_path("/etc/nginx/sites-enabled/default")
    assert "(or a link on the way) is inside the image" in str(err.value)


def test_a_proc_that_is_not_the_containers_is_refused():
    """Seen with the engines run in a chroot: exec'd processes saw the
    machine's /proc.  Nothing may be signalled then."""
    class ForeignProc(FakeEngine):
        def run(self, args, timeout=60):
            if args[0] == "exec" and args[3:4] == ["-c"]:
                self.calls.append(list(args))
                return Result(procs.FOREIGN_PROC)
            return super().run(args, timeout)
    engine = ForeignProc()
    with pytest.raises(NginxError) as err:
        controller(engine).reload(timeout=5)
    assert "/proc there does not show the container's own processes" in str(err.value)
    assert engine.signals == []
    master = procs.Proc(1, 0, "S", "500", NGINX, "nginx: master process nginx")
    with pytest.raises(NginxError) as err:
        controller(engine).signal_master(master, "HUP")
    assert "/proc there does not show the container's own processes" in str(err.value)


def test_own_proc_check_passes_here():
    # This machine's /proc is this shell's: the scripts' first line lets them run.
    assert run_script(procs.PS_SCRIPT).returncode == 0


@pytest.mark.skipif(subprocess.run(["unshare", "--pid", "--fork", "true"],
                                   capture_output=True).returncode != 0,
                    reason="no PID namespaces here (unshare --pid refused)")
@pytest.mark.parametrize("script", ["PS_SCRIPT", "SIGNAL_SCRIPT"])
def test_scripts_refuse_a_proc_of_another_pid_namespace(script, fake_master):
    # In a PID namespace of its own under this machine's /proc, the shell
    # is pid 1 but /proc/self is its pid out here: what the scripts refuse.
    proc = subprocess.run(["unshare", "--pid", "--fork", "sh", "-c", getattr(procs, script), "sh",
                           str(fake_master.pid), start_of(fake_master.pid), "TERM"],
                          capture_output=True, text=True)
    assert proc.returncode == procs.FOREIGN_PROC
    assert fake_master.poll() is None

