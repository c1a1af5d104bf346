"""The rules' errors are Problems: the message the user reads, and where it
applies (file, line, node) as fields code and tests can read."""
import pytest

from certbot_nginx_webroot import certificate_lines, effective, https_server, lookup, parser, sites
from certbot_nginx_webroot.config import Config, ConfigError
from certbot_nginx_webroot.problems import Problem


def load(tmp_path, sites_text):
    (tmp_path / "nginx.conf").write_text("http {\n    include sites.conf;\n}\n")
    (tmp_path / "sites.conf").write_text(sites_text)
    return Config.load(str(tmp_path / "nginx.conf"))


def test_a_parse_error_has_its_file_and_line():
    with pytest.raises(parser.ParseError) as err:
        parser.parse("events {}\nhttp {\n    listen 80\n", "/etc/nginx/broken.conf")
    assert isinstance(err.value, Problem)
    assert (err.value.file, err.value.line) == ("/etc/nginx/broken.conf", 4)
    assert err.value.node is None
    assert err.value.where == "/etc/nginx/broken.conf:4"
    assert err.value.reason == 'unexpected end of file, expecting ";" or "}"'
    assert str(err.value) == f"{err.value.reason} in /etc/nginx/broken.conf:4"


def test_a_missing_include_names_the_include_directive(tmp_path):
    (tmp_path / "nginx.conf").write_text("events {}\nhttp {\n    include missing.conf;\n}\n")
    with pytest.raises(ConfigError) as err:
        Config.load(str(tmp_path / "nginx.conf"))
    assert isinstance(err.value, Problem)
    assert err.value.node.name == "include" and err.value.node.args == ["missing.conf"]
    assert (err.value.file, err.value.line) == (str(tmp_path / "nginx.conf"), 3)


def test_an_include_loop_names_the_include_that_closes_it(tmp_path):
    (tmp_path / "nginx.conf").write_text("http {\n    include a.conf;\n}\n")
    (tmp_path / "a.conf").write_text("# a\ninclude a.conf;\n")
    with pytest.raises(ConfigError) as err:
        Config.load(str(tmp_path / "nginx.conf"))
    assert err.value.where == f"{tmp_path}/a.conf:2"


def test_an_unreadable_main_file_is_the_file_itself(tmp_path):
    with pytest.raises(ConfigError) as err:
        Config.load(str(tmp_path / "absent.conf"))
    assert (err.value.file, err.value.line, err.value.node) == (
        str(tmp_path / "absent.conf"), None, None)


def test_a_redirect_only_block_refused_for_https_is_the_node(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example;\n"
                  "    return 301 https://$host$request_uri;\n}\n")
    block = config.server_blocks()[0]
    with pytest.raises(sites.SiteError) as err:
        https_server.make_https_server(config, sites.answering(config, "a.example", 80)[0],
                                       "a.example", 80, 443)
    assert isinstance(err.value, Problem)
    assert err.value.node is block
    assert err.value.where == f"{tmp_path}/sites.conf:1"


def test_a_certificate_in_a_shared_include_is_the_included_directive(tmp_path):
    (tmp_path / "tls.inc").write_text("ssl_certificate /old.pem;\n")
    config = load(tmp_path, "server {\n    listen 443 ssl;\n    server_name a.example;\n"
                  f"    include {tmp_path}/tls.inc;\n}}\n")
    with pytest.raises(sites.SiteError) as err:
        certificate_lines.set_certificate(config, config.server_blocks()[0], "/f.pem", "/k.pem",
                                          443)
    assert err.value.node.name == "ssl_certificate"
    assert err.value.where == f"{tmp_path}/tls.inc:1"


def test_an_ambiguous_name_is_the_block_nginx_ignores(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example; }\n"
                  "server { listen 80; server_name a.example; }\n")
    with pytest.raises(sites.SiteError) as err:
        sites.answering(config, "a.example", 80)
    assert err.value.node is config.server_blocks()[1]
    assert err.value.where == f"{tmp_path}/sites.conf:2"
    with pytest.raises(lookup.AmbiguousName) as direct:
        lookup.answering(config.servers(), "a.example", 80)
    assert direct.value.node is config.server_blocks()[1]


def test_an_unknown_document_path_is_its_root(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example;\n"
                  "    root /srv/$cookie_site;\n}\n")
    server = config.server_blocks()[0]
    with pytest.raises(effective.Unknown) as err:
        effective.document_path(config, server, [], "/x", "/", "a.example")
    assert err.value.node.name == "root"
    assert err.value.where == f"{tmp_path}/sites.conf:4"
