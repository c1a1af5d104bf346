"""The configuration model for an nginx whose paths are not this machine's
(nginx in a container): includes resolved as nginx sees them, opened
through the volumes, and files that live only in nginx's image read as
nginx printed them and never edited.  A fake mapping is handed in (the
container controller's own mapping has tests of its own)."""
import os

import pytest

from certbot_nginx_webroot import edit, own_server
from certbot_nginx_webroot.config import Config, ConfigError
from certbot_nginx_webroot.problems import Problem

IMAGE_NGINX_CONF = ("events {}\nhttp {\n    include /etc/nginx/mime.types;\n"
                    "    include /etc/nginx/conf.d/*.conf;\n}\n")
SITE = "server {\n    listen 80;\n    server_name a.example;\n}\n"


class Volumes:
    """nginx's paths under a mount's destination are this machine's under
    its source; other paths are in the image, whose files are given."""

    def __init__(self, mounts, image):
        self.mounts = mounts  # destination -> source
        self.image = image    # path -> text (what nginx -T printed)
        self.dumps = 0

    def local_path(self, path):
        for inside, outside in self.mounts.items():
            if path == inside or path.startswith(inside + "/"):
                return outside + path[len(inside):]
        raise Problem(f"{path} is inside the image: mount it, -v {os.path.dirname(path)}")

    def nginx_path(self, path):
        for inside, outside in self.mounts.items():
            if path == outside or path.startswith(outside + "/"):
                return inside + path[len(outside):]
        raise Problem(f"{path} is not mounted")

    def image_file(self, path):
        self.dumps += 1
        return self.image.get(path)

    def image_paths(self):
        return sorted(self.image)


def compose_layout(tmp_path, sites, mounted=True):
    """The official image's layout: nginx.conf and mime.types in the image,
    conf.d/ on a volume (or, mounted=False, in the image too)."""
    conf_d = tmp_path / "conf.d"
    conf_d.mkdir()
    image = {"/etc/nginx/nginx.conf": IMAGE_NGINX_CONF, "/etc/nginx/mime.types": "types {}\n"}
    for name, text in sites.items():
        if mounted:
            (conf_d / name).write_text(text)
        else:
            image[f"/etc/nginx/conf.d/{name}"] = text
    mounts = {"/etc/nginx/conf.d": str(conf_d)} if mounted else {}
    return Volumes(mounts, image)


def test_files_on_a_volume_are_read_there_and_the_image_files_as_nginx_printed_them(tmp_path):
    paths = compose_layout(tmp_path, {"b.conf": SITE, "a.conf": SITE.replace("a.ex", "z.ex"),
                                      ".hidden.conf": "bad {"})
    config = Config.load("/etc/nginx/nginx.conf", paths)
    assert config.main_path == "/etc/nginx/nginx.conf"
    assert config.prefix == "/etc/nginx"
    assert sorted(config.files) == ["/etc/nginx/mime.types", "/etc/nginx/nginx.conf",
                                    str(tmp_path / "conf.d/a.conf"),
                                    str(tmp_path / "conf.d/b.conf")]
    # nginx's order: conf.d/*.conf sorted, as nginx's glob sorts them
    assert [s.names for s in config.servers()] == [("z.example",), ("a.example",)]
    assert config.servers()[0].ref.file == str(tmp_path / "conf.d/a.conf")


def test_an_edit_of_a_file_on_a_volume_is_saved_there(tmp_path):
    paths = compose_layout(tmp_path, {"site.conf": SITE})
    config = Config.load("/etc/nginx/nginx.conf", paths)
    server = config.server_blocks()[0]
    edit.insert(server, len(server.children), "server_name b.example;", "\n", server.file)
    config.mark_changed(server)
    assert config.save() == [str(tmp_path / "conf.d/site.conf")]
    assert "server_name b.example;" in (tmp_path / "conf.d/site.conf").read_text()


def test_an_edit_of_a_file_in_the_image_is_refused_with_the_mount_to_add(tmp_path):
    paths = compose_layout(tmp_path, {"site.conf": SITE})
    config = Config.load("/etc/nginx/nginx.conf", paths)
    http = next(config.http_blocks())
    with pytest.raises(ConfigError) as err:
        config.mark_changed(http)
    assert str(err.value) == ("cannot edit /etc/nginx/nginx.conf: /etc/nginx/nginx.conf is "
                              "inside the image: mount it, -v /etc/nginx")
    assert err.value.file == "/etc/nginx/nginx.conf"
    assert config.changed == set()


def test_a_glob_over_a_directory_in_the_image_matches_the_files_nginx_loaded(tmp_path):
    paths = compose_layout(tmp_path, {"a.conf": SITE, "sub/x.conf": "bad {"}, mounted=False)
    config = Config.load("/etc/nginx/nginx.conf", paths)
    # `*` stops at a slash, as glob's does
    assert sorted(config.files) == ["/etc/nginx/conf.d/a.conf", "/etc/nginx/mime.types",
                                    "/etc/nginx/nginx.conf"]
    assert config.servers()[0].names == ("a.example",)


def test_a_missing_file_on_no_volume_names_the_mount(tmp_path):
    paths = compose_layout(tmp_path, {})
    paths.image["/etc/nginx/nginx.conf"] += "include /etc/nginx/extra.conf;\n"
    with pytest.raises(ConfigError) as err:
        Config.load("/etc/nginx/nginx.conf", paths)
    assert "cannot read /etc/nginx/extra.conf (included from /etc/nginx/nginx.conf:6)" \
        in str(err.value)
    assert "mount it, -v /etc/nginx" in str(err.value)


def test_our_own_server_goes_into_the_included_directory_on_the_volume(tmp_path):
    paths = compose_layout(tmp_path, {"site.conf": SITE})
    config = Config.load("/etc/nginx/nginx.conf", paths)
    written = own_server.add_own_server(config, ["new.example"], "/var/www/acme", 80)
    assert written == str(tmp_path / "conf.d" / own_server.OWN_FILE)
    assert config.changed == {written}  # no include added to the image's nginx.conf
    config.save()
    assert "server_name new.example;" in (tmp_path / "conf.d" / own_server.OWN_FILE).read_text()


def test_our_own_server_needs_a_volume_when_no_glob_covers_it(tmp_path):
    paths = compose_layout(tmp_path, {})
    paths.image["/etc/nginx/nginx.conf"] = "events {}\nhttp {\n}\n"
    config = Config.load("/etc/nginx/nginx.conf", paths)
    with pytest.raises(Problem) as err:
        own_server.add_own_server(config, ["new.example"], "/var/www/acme", 80)
    assert "mount it" in str(err.value)
    assert config.changed == set()


def test_the_image_is_not_asked_for_when_every_file_is_on_a_volume(tmp_path):
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include conf.d/*.conf;\n}\n")
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d/site.conf").write_text(SITE)
    paths = Volumes({"/etc/nginx": str(tmp_path)}, {})
    config = Config.load("/etc/nginx/nginx.conf", paths)
    assert config.main_path == str(tmp_path / "nginx.conf")
    assert sorted(config.files) == [str(tmp_path / "conf.d/site.conf"),
                                    str(tmp_path / "nginx.conf")]
    assert paths.dumps == 0


def test_our_own_server_in_an_image_only_layout_names_the_included_directory(tmp_path):
    paths = compose_layout(tmp_path, {"site.conf": SITE}, mounted=False)
    config = Config.load("/etc/nginx/nginx.conf", paths)
    with pytest.raises(Problem) as err:
        own_server.add_own_server(config, ["new.example"], "/var/www/acme", 80)
    assert str(err.value) == (f"/etc/nginx/conf.d/{own_server.OWN_FILE} is inside the image: "
                              "mount it, -v /etc/nginx/conf.d")
    assert config.changed == set()


class Controller:
    """A container controller's paths: nginx.conf in the image, conf.d/ on
    a volume; config_dump counted."""

    def __init__(self, tmp_path):
        self.volumes = compose_layout(tmp_path, {"site.conf": SITE})
        self.dumps = 0

    def conf_path(self):
        return "/etc/nginx/nginx.conf"

    def config_dump(self):
        self.dumps += 1
        return dict(self.volumes.image)

    def local_path(self, path):
        return self.volumes.local_path(path)

    def nginx_path(self, path):
        return self.volumes.nginx_path(path)


def test_a_run_reads_the_image_through_the_controller_once(tmp_path):
    from certbot_nginx_webroot.flows.run import Run
    controller = Controller(tmp_path)
    run = Run(object(), controller, net=None)
    config = run.config()
    assert config.main_path == "/etc/nginx/nginx.conf"
    assert str(tmp_path / "conf.d/site.conf") in config.files
    run.forget_config()  # as after an edit is saved or undone
    run.config()
    assert controller.dumps == 1


def test_a_local_nginx_is_read_from_its_main_conf_and_never_dumped(tmp_path):
    from certbot_nginx_webroot.flows.run import NginxPaths

    class Local:
        main_conf = str(tmp_path / "nginx.conf")
        conf_path = main_conf  # LocalNginx's attribute, not a container's method

        def local_path(self, path):
            return path

    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n}\n")
    paths = NginxPaths(Local())
    assert paths.main_conf() == str(tmp_path / "nginx.conf")
    config = Config.load(paths.main_conf(), paths)
    assert list(config.files) == [str(tmp_path / "nginx.conf")]
    assert paths.image_paths() == []
