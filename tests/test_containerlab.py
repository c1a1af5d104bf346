"""The container lab itself: under Docker and under Podman, an nginx
container of the lab image serves a file from a mounted volume on the
lab's loopback port, as nginx's main process, started by an entrypoint
script, or under the engine's --init, and is gone once removed."""
import pytest

import containerlab
import lab

pytestmark = pytest.mark.e2e
engine = containerlab.engine_fixture()

SITE = "server {\n    listen 127.0.0.1:{http};\n    root /usr/share/nginx/html;\n}\n"


@pytest.mark.parametrize("first", sorted(containerlab.NginxContainer.FIRST))
def test_container_serves_mounted_file(engine, first):
    web = containerlab.NginxContainer(engine, f"lab-web-{engine.name}", first=first)
    try:
        web.write("conf.d/site.conf", SITE)
        web.write("html/probe.txt", f"served by {engine.name}\n")
        web.start()
        assert lab.http_get("anything", "/probe.txt") == (200, f"served by {engine.name}\n"
                                                          .encode())
        # The file is read through the volume: a change on the host is served.
        web.write("html/probe.txt", "changed on the host\n")
        assert lab.http_get("anything", "/probe.txt") == (200, b"changed on the host\n")
        titles = web.exec("sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '").stdout
        if first == "nginx":
            assert titles.startswith("nginx: master process")
        elif first == "script":
            assert titles.startswith("/bin/sh /lab-entrypoint.sh")
        else:  # tini, as docker-init or by its own path
            assert "init" in titles.split()[0] and "nginx -g daemon off;" in titles
    finally:
        web.remove()
    assert engine.cli("ps", "-a", "--format", "{{.Names}}").stdout.split() == []


def test_image_is_laid_out_like_the_official_one(engine):
    web = containerlab.NginxContainer(engine, f"lab-layout-{engine.name}")
    try:
        web.write("conf.d/site.conf", SITE)
        web.start()
        dumped = web.exec("nginx", "-T").stdout
        assert "include /etc/nginx/conf.d/*.conf;" in dumped
        assert "# configuration file /etc/nginx/conf.d/site.conf:" in dumped
        config = engine.cli("inspect", "--format", "{{json .Config.Cmd}}", web.name).stdout
        assert config.strip() == '["nginx","-g","daemon off;"]'
    finally:
        web.remove()
