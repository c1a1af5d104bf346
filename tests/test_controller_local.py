"""nginx control against the real binary (no certbot involved)."""
import os
import shutil
import signal
import subprocess
import time

import pytest

import lab
from certbot_nginx_webroot import probes
from certbot_nginx_webroot.controllers import local as nginxctl
from certbot_nginx_webroot.controllers import NginxError, NotRunning

pytestmark = pytest.mark.skipif(
    not os.path.exists(lab.nginx_binary()) and not os.environ.get("CI"),
    reason="nginx is not installed")


def test_missing_binary_is_named(tmp_path):
    with pytest.raises(NginxError) as err:
        nginxctl.LocalNginx(str(tmp_path / "nope"), "/etc/nginx/nginx.conf").binary()
    assert "nope" in str(err.value) and "--nginx-webroot-ctl" in str(err.value)


@pytest.fixture
def server():
    nginx = lab.NginxLab()
    yield nginx
    nginx.stop()


def test_config_test_failure_names_file_and_line(server):
    path = server.write("sites/bad.conf", "server {\n    listen {http};\n    proxy_passs x;\n}\n")
    with pytest.raises(NginxError) as err:
        nginxctl.LocalNginx(lab.nginx_binary(), server.conf).test()
    assert f"{path}:3" in str(err.value) and "proxy_passs" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_running_is_a_clear_error(server):
    with pytest.raises(NginxError) as err:
        nginxctl.LocalNginx(lab.nginx_binary(), server.conf).master_pid()
    assert "nginx is not running" in str(err.value)
    assert os.path.join(server.prefix, "nginx.pid") in str(err.value)


def test_reload_waits_for_the_new_workers_only(server):
    server.write("sites/a.conf", "server {\n    listen 127.0.0.1:{http};\n"
                 "    return 200 \"one\\n\";\n}\n")
    server.start()
    try:
        ctl = nginxctl.LocalNginx(lab.nginx_binary(), server.conf)
        assert ctl.master_pid() == server.master_pid()
        old = set(nginxctl.children_of(server.master_pid()))
        server.write("sites/a.conf", "server {\n    listen 127.0.0.1:{http};\n"
                     "    return 200 \"two\\n\";\n}\n")
        ctl.reload(timeout=10)
        # right after reload() returns, every new connection gets the new config
        for _ in range(20):
            assert probes.fetch("x", "127.0.0.1", lab.HTTP_PORT, "/") == (200, b"two\n")
        assert server.reloads() == 1
        assert set(nginxctl.children_of(server.master_pid())) - old
    finally:
        server.stop()


def test_reload_with_a_config_nginx_rejects_times_out_with_a_clear_error(server):
    server.write("sites/a.conf", "server { listen 127.0.0.1:{http}; }\n")
    server.start()
    try:
        server.write("sites/a.conf", "server { listen 127.0.0.1:{http}; bogus; }\n")
        with pytest.raises(NginxError) as err:
            nginxctl.LocalNginx(lab.nginx_binary(), server.conf).reload(timeout=1)
        assert "did not start workers" in str(err.value)
        assert probes.fetch("x", "127.0.0.1", lab.HTTP_PORT, "/")[0] == 404  # still serving
    finally:
        server.stop()


@pytest.mark.parametrize("main,expected", [
    ("pid /run/x.pid;\nevents {}\n", "/run/x.pid"),
    ("pid logs/x.pid;\n", "{prefix}/logs/x.pid"),
    ("events {}\n", "{default}"),
])
def test_pid_path_from_the_main_file_or_the_binary(tmp_path, main, expected):
    conf = tmp_path / "nginx.conf"
    conf.write_text(main)
    ctl = nginxctl.LocalNginx(lab.nginx_binary(), str(conf))
    prefix, default = ctl.compiled_paths()
    assert ctl.pid_path() == expected.format(prefix=prefix.rstrip("/"), default=default)


@pytest.mark.parametrize("text", ["-1", "0", "1", "1\n", "+1", "1_0", " 12", "12 ", "0x10",
                                  "abc", "", "99999999999"])
def test_a_pid_file_that_names_no_master_signals_nothing(server, text):
    pid_file = os.path.join(server.prefix, "nginx.pid")
    with open(pid_file, "w") as f:
        f.write(text)
    try:
        ctl = nginxctl.LocalNginx(lab.nginx_binary(), server.conf)
        for act in (ctl.master_pid, lambda: ctl.signal_master(signal.SIGHUP), ctl.reload):
            with pytest.raises(NotRunning) as err:
                act()
            assert "nginx is not running" in str(err.value) and "\n" not in str(err.value)
    finally:
        os.remove(pid_file)  # -1 would be every process to a careless reader


@pytest.fixture
def bystander():
    """A process that is not nginx; SIGHUP would end it."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def test_a_stale_pid_file_naming_another_process_signals_nothing(server, bystander):
    with open(os.path.join(server.prefix, "nginx.pid"), "w") as f:
        f.write(f"{bystander.pid}\n")
    ctl = nginxctl.LocalNginx(lab.nginx_binary(), server.conf)
    with pytest.raises(NotRunning) as err:
        ctl.reload(timeout=1)
    assert f"pid {bystander.pid}" in str(err.value) and "not an nginx master" in str(err.value)
    assert "nothing was signalled" in str(err.value)
    time.sleep(0.1)
    assert bystander.poll() is None  # alive: it got no SIGHUP
    os.remove(os.path.join(server.prefix, "nginx.pid"))


def test_a_process_titled_like_a_master_of_another_binary_is_refused(server):
    # `exec -a` gives sleep nginx's master title; its executable is still sleep.
    proc = subprocess.Popen(["bash", "-c", 'exec -a "nginx: master process fake" sleep 60'])
    try:
        time.sleep(0.2)
        with open(os.path.join(server.prefix, "nginx.pid"), "w") as f:
            f.write(f"{proc.pid}\n")
        with pytest.raises(NotRunning) as err:
            nginxctl.LocalNginx(lab.nginx_binary(), server.conf).reload(timeout=1)
        assert "not of" in str(err.value)
        assert proc.poll() is None
    finally:
        os.remove(os.path.join(server.prefix, "nginx.pid"))
        proc.kill()
        proc.wait()


def test_the_running_master_is_recognised_and_signalled(server):
    server.start()
    try:
        ctl = nginxctl.LocalNginx(lab.nginx_binary(), server.conf)
        assert ctl.signal_master(signal.SIGHUP) == server.master_pid()
        assert probes.wait_until(lambda: server.reloads() == 1, 5)
    finally:
        server.stop()


@pytest.fixture
def hanging_nginx(tmp_path, monkeypatch):
    """An "nginx" that never finishes, as `nginx -t` does when the resolver
    it asks for an upstream's address does not answer."""
    binary = tmp_path / "nginx"
    binary.write_text("#!/bin/sh\nexec sleep 30\n")
    binary.chmod(0o755)
    monkeypatch.setattr(nginxctl, "COMMAND_TIMEOUT", 0.5)
    return nginxctl.LocalNginx(str(binary), str(tmp_path / "nginx.conf"))


@pytest.mark.parametrize("ask", ["test", "build_info"])
def test_a_hanging_nginx_command_times_out_with_a_clear_error(hanging_nginx, ask):
    started = time.monotonic()
    with pytest.raises(NginxError) as err:
        getattr(hanging_nginx, ask)()
    assert time.monotonic() - started < 5
    assert "did not finish within 0 s" in str(err.value) or \
        "did not finish within 1 s" in str(err.value)


def test_a_master_run_through_a_loader_by_a_wrapper_script_is_recognised(server, tmp_path):
    # As .ci/newer-nginx runs nginx 1.26: a script that execs the dynamic
    # loader with the binary.  The kernel shows only the loader's path as
    # the master's command line; its workers show their title.
    loader = "/lib64/ld-linux-x86-64.so.2"
    if not os.path.exists(loader) or lab.nginx_binary() != shutil.which("nginx"):
        pytest.skip("needs the system's loader and nginx")
    wrapper = tmp_path / "nginx"
    wrapper.write_text(f'#!/bin/sh\nexec {loader} {lab.nginx_binary()} "$@"\n')
    wrapper.chmod(0o755)
    server.write("sites/a.conf", "server { listen 127.0.0.1:{http}; }\n")
    subprocess.run([str(wrapper), "-p", server.prefix, "-c", server.conf], check=True)
    ctl = nginxctl.LocalNginx(str(wrapper), server.conf)
    try:
        server.wait_workers()
        pid = server.master_pid()
        assert ctl.master_pid() == pid
        # the same binary run directly is not this wrapper's
        assert nginxctl.master_problem(pid, lab.nginx_binary()) is not None
    finally:
        ctl.signal_master(signal.SIGQUIT)
        assert probes.wait_until(lambda: not os.path.exists(f"/proc/{pid}"), 10)


def test_reload_of_a_master_that_has_no_worker_yet_waits_for_it(monkeypatch):
    """Just started, a master listens before it forks its worker: that
    first worker must not pass for one with the new configuration."""
    states = iter([
        {},                                                   # no worker yet
        {101: "nginx: worker process"},                       # its first worker
        {101: "nginx: worker process", 102: "nginx: worker process"},  # reloading
        {102: "nginx: worker process"},                       # old one gone
    ])
    seen = []

    def next_children(pid):
        seen.append(next(states))
        return seen[-1]

    signals = []

    class StartingMaster(nginxctl.LocalNginx):
        """A master (pid 100) whose children are the states above."""
        master_pid = staticmethod(lambda: 100)
        signal_master = staticmethod(signals.append)
        children = staticmethod(next_children)

    monkeypatch.setattr(nginxctl, "POLL_INTERVAL", 0)
    StartingMaster("nginx", "/etc/nginx/nginx.conf").reload(timeout=5)
    assert signals == [signal.SIGHUP]
    assert seen[-1] == {102: "nginx: worker process"}  # returned only once 101 was gone
