"""nginx control against the real binary (no certbot involved)."""
import os

import pytest

import lab
from certbot_nginx_webroot import nginxctl, probes

pytestmark = pytest.mark.skipif(
    not os.path.exists(lab.nginx_binary()) and not os.environ.get("CI"),
    reason="nginx is not installed")


def test_missing_binary_is_named(tmp_path):
    with pytest.raises(nginxctl.NginxError) as err:
        nginxctl.Nginx(str(tmp_path / "nope"), "/etc/nginx/nginx.conf").binary()
    assert "nope" in str(err.value) and "--nginx-webroot-ctl" in str(err.value)


@pytest.fixture
def server():
    nginx = lab.NginxLab()
    yield nginx
    nginx.stop()


def test_config_test_failure_names_file_and_line(server):
    path = server.write("sites/bad.conf", "server {\n    listen {http};\n    proxy_passs x;\n}\n")
    with pytest.raises(nginxctl.NginxError) as err:
        nginxctl.Nginx(lab.nginx_binary(), server.conf).test()
    assert f"{path}:3" in str(err.value) and "proxy_passs" in str(err.value)
    assert "\n" not in str(err.value)


def test_not_running_is_a_clear_error(server):
    with pytest.raises(nginxctl.NginxError) as err:
        nginxctl.Nginx(lab.nginx_binary(), server.conf).master_pid()
    assert "nginx is not running" in str(err.value)
    assert os.path.join(server.prefix, "nginx.pid") in str(err.value)


def test_reload_waits_for_the_new_workers_only(server):
    server.write("sites/a.conf", "server {\n    listen 127.0.0.1:{http};\n"
                 "    return 200 \"one\\n\";\n}\n")
    server.start()
    try:
        ctl = nginxctl.Nginx(lab.nginx_binary(), server.conf)
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
        with pytest.raises(nginxctl.NginxError) as err:
            nginxctl.Nginx(lab.nginx_binary(), server.conf).reload(timeout=1)
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
    ctl = nginxctl.Nginx(lab.nginx_binary(), str(conf))
    prefix, default = ctl.compiled_paths()
    assert ctl.pid_path() == expected.format(prefix=prefix.rstrip("/"), default=default)
