"""The seams: controllers and challenge stores chosen by name from their
registries, the edge's one translation of Problems into certbot's errors,
and the owed reloads of a controller other than the local one."""
import json
import types

import pytest
from certbot import errors

from certbot_nginx_webroot import controllers, plugin, problems, stores
from certbot_nginx_webroot.controllers.local import LocalNginx
from certbot_nginx_webroot.flows import owed
from certbot_nginx_webroot.stores.local import LocalDirectory


def test_the_local_controller_is_made_from_the_options():
    ctl = controllers.create("local", {"ctl": "/usr/sbin/nginx", "server_root": "/srv/nginx"})
    assert isinstance(ctl, LocalNginx)
    assert ctl.main_conf == "/srv/nginx/nginx.conf"
    assert ctl.identity == ("local", "/usr/sbin/nginx", "/srv/nginx/nginx.conf")
    assert ctl.reach("*", 80) == ("*", 80)
    assert ctl.nginx_path("/etc/letsencrypt/live/a/fullchain.pem") == \
        ctl.local_path("/etc/letsencrypt/live/a/fullchain.pem") == \
        "/etc/letsencrypt/live/a/fullchain.pem"


def test_an_unknown_controller_or_store_is_named_with_the_known_ones():
    with pytest.raises(problems.Problem, match=r"unknown nginx controller 'nope'; known: .*local"):
        controllers.get("nope")
    with pytest.raises(problems.Problem, match=r"unknown challenge store 'nope'; known: .*local"):
        stores.get("nope")
    assert stores.get("local") is LocalDirectory


def test_a_missing_nginx_is_not_installed(tmp_path):
    ctl = LocalNginx(str(tmp_path / "no-nginx"), str(tmp_path / "nginx.conf"))
    with pytest.raises(problems.NotInstalled, match="not found; set --nginx-webroot-ctl"):
        ctl.check_installed()


@pytest.mark.parametrize("ours, theirs", [
    (problems.Problem, errors.PluginError),
    (problems.NotInstalled, errors.NoInstallationError),
    (problems.Misconfigured, errors.MisconfigurationError),
    (problems.AlreadyPresent, errors.PluginEnhancementAlreadyPresent),
    (controllers.NginxError, errors.PluginError),
])
def test_the_edge_turns_each_problem_into_certbots_error(ours, theirs):
    translated = plugin.certbot_error(ours("what went wrong"))
    assert type(translated) is theirs and str(translated) == "what went wrong"


def test_a_problem_carries_where_it_applies():
    node = types.SimpleNamespace(file="/etc/nginx/sites/a.conf", line=12)
    problem = problems.Problem("cannot edit", node=node)
    assert (problem.file, problem.line, problem.node, problem.where) == \
        ("/etc/nginx/sites/a.conf", 12, node, "/etc/nginx/sites/a.conf:12")
    assert str(problem) == "cannot edit"
    assert problems.Problem("anywhere").where is None


def test_a_reload_owed_by_another_controller_is_kept_under_its_identity(tmp_path):
    owed.reset()
    path = str(tmp_path / owed.STATE_NAME)
    identity = ("container", "docker", "web")
    owed.remember_at(path, identity, ["a.example"], "/le/live/a/fullchain.pem")
    owed.remember_at(path, ("local", "nginx", "/etc/nginx/nginx.conf"), ["b.example"])
    data = json.loads(open(path).read())
    assert {"controller": ["container", "docker", "web"], "lineages": [
        {"names": ["a.example"], "fullchain": "/le/live/a/fullchain.pem"}]} in data["reloads"]
    assert {"ctl": "nginx", "conf": "/etc/nginx/nginx.conf", "lineages": [
        {"names": ["b.example"], "fullchain": None}]} in data["reloads"]
    owed.reset()  # the next process
    assert owed.left_at(path, identity, "/le/live/a/fullchain.pem", ["a.example"])
    assert not owed.left_at(path, ("container", "podman", "web"),
                            "/le/live/a/fullchain.pem", ["a.example"])
    owed.reset()
