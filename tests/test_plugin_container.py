"""The edge for nginx in a container: the options choose the container
controller (one per container per process), the challenge directory and
certbot's certificates are checked mounted before anything changes, and
certbot's lock is taken where the configuration nginx loads is on this
machine.  A fake controller is handed in where one is needed."""
import os
import types

import pytest
from certbot import errors

from certbot_nginx_webroot import plugin
from certbot_nginx_webroot.controllers.container import ContainerNginx
from certbot_nginx_webroot.problems import Problem


def make_plugin(tmp_path, controller=None, **conf):
    values = dict(
        nginx_webroot_server_root="/etc/nginx", nginx_webroot_ctl="nginx",
        nginx_webroot_path=str(tmp_path / "html"),
        nginx_webroot_container="web", nginx_webroot_engine="podman",
        http01_port=80, https_port=443, config_dir=str(tmp_path / "le"),
        work_dir=str(tmp_path / "work"), backup_dir=str(tmp_path / "work/backups"),
        temp_checkpoint_dir=str(tmp_path / "work/temp"),
        in_progress_dir=str(tmp_path / "work/progress"), strict_permissions=False,
        dry_run=False)
    values.update(conf)
    handed = {} if controller is None else {"controller": controller}
    return plugin.NginxWebroot(types.SimpleNamespace(**values), "nginx-webroot", **handed)


class Mounted:
    """A container whose volumes are the given directories (destination ->
    source); its nginx.conf is in the image."""

    def __init__(self, mounts, dump=()):
        self.mounts = mounts
        self.dump = {path: "" for path in dump}
        self.identity = ("container", "podman", "web", id(self))  # one per test

    def check_installed(self):
        pass

    def conf_path(self):
        return "/etc/nginx/nginx.conf"

    def config_dump(self):
        return dict(self.dump)

    def local_path(self, path):
        for inside, outside in self.mounts.items():
            if path == inside or path.startswith(inside + "/"):
                return outside + path[len(inside):]
        raise Problem(f"{path} is inside the image: mount it")

    def nginx_path(self, path):
        for inside, outside in self.mounts.items():
            if path == outside or path.startswith(outside + "/"):
                return inside + path[len(outside):]
        raise Problem(f"{path} is not mounted into podman container 'web': add "
                      f"-v {path}:{path}")


def test_the_container_option_chooses_the_container_controller_once_per_process(tmp_path):
    first = make_plugin(tmp_path)._controller
    assert isinstance(first, ContainerNginx)
    assert (first.name, first.cli.kind) == ("web", "podman")
    assert first.identity == ("container", "podman", "web")
    assert make_plugin(tmp_path)._controller is first
    other = make_plugin(tmp_path, nginx_webroot_container="web2")._controller
    assert other is not first and other.name == "web2"


def test_without_the_container_option_nginx_is_local(tmp_path):
    local = make_plugin(tmp_path, nginx_webroot_container=None)._controller
    assert not isinstance(local, ContainerNginx)
    assert local.identity[0] == "local"


def volumes(tmp_path):
    for sub in ("conf.d", "html", "le"):
        (tmp_path / sub).mkdir()
    return {"/etc/nginx/conf.d": str(tmp_path / "conf.d"),
            "/usr/share/nginx/html": str(tmp_path / "html"),
            "/etc/letsencrypt": str(tmp_path / "le")}


def test_prepare_locks_the_directory_of_the_configuration_on_a_volume(tmp_path):
    controller = Mounted(volumes(tmp_path), dump=["/etc/nginx/nginx.conf",
                                                  "/etc/nginx/conf.d/site.conf"])
    make_plugin(tmp_path, controller).prepare()
    assert os.path.exists(tmp_path / "conf.d" / ".certbot.lock")


@pytest.mark.parametrize("missing, advice", [
    ("/usr/share/nginx/html", "html:"),
    ("/etc/letsencrypt", "le:"),
])
def test_prepare_refuses_what_nginx_cannot_see_before_anything_changes(tmp_path, missing,
                                                                        advice):
    mounts = volumes(tmp_path)
    del mounts[missing]
    with pytest.raises(errors.PluginError) as err:
        make_plugin(tmp_path, Mounted(mounts)).prepare()
    assert "is not mounted into podman container 'web'" in str(err.value)
    assert advice in str(err.value)
    assert not os.path.exists(tmp_path / "conf.d" / ".certbot.lock")
    assert [os.listdir(tmp_path / sub) for sub in ("conf.d", "html", "le")] == [[], [], []]


def test_certificates_are_not_needed_when_certbot_only_authenticates(tmp_path):
    mounts = volumes(tmp_path)
    del mounts["/etc/letsencrypt"]
    make_plugin(tmp_path, Mounted(mounts), verb="certonly", authenticator="nginx-webroot",
                installer=None, configurator=None).prepare()
    with pytest.raises(errors.PluginError):
        make_plugin(tmp_path, Mounted(mounts), verb="run", authenticator="nginx-webroot",
                    installer="nginx-webroot", configurator=None).prepare()
