"""ssl_certificate lines: covers, pairs, setting them, the listens that serve a
certificate (no certbot, no nginx)."""
import pytest

from certbot_nginx_webroot import certificate_lines
from site_configs import M, load, text


def test_set_certificate_leaves_a_listen_that_ssl_on_makes_tls(tmp_path):
    config = load(tmp_path, "server {\n    listen 443;\n    ssl on;\n"
                  "    server_name a.example;\n}\n")
    certificate_lines.set_certificate(config, config.server_blocks()[0], "/f.pem", "/k.pem", 443)
    assert "    listen 443;\n" in text(config)


def test_covers():
    assert certificate_lines.covers(["a.example", "*.b.example"], "x.b.example")
    assert not certificate_lines.covers(["*.b.example"], "b.example")
    assert not certificate_lines.covers(["*.b.example"], "y.x.b.example")


def test_set_certificate_adds_ssl_to_a_plain_listen(tmp_path):
    config = load(tmp_path, "server {\n    listen 443;\n    server_name a.example;\n}\n")
    certificate_lines.set_certificate(config, config.server_blocks()[0], "/f.pem", "/k.pem", 443)
    assert text(config) == (f"server {{\n    listen 443 ssl;  {M}\n    server_name a.example;\n"
                            f"    ssl_certificate /f.pem;  {M}\n"
                            f"    ssl_certificate_key /k.pem;  {M}\n}}\n")


def test_certificate_listens_finds_the_https_port_from_the_config(tmp_path):
    config = load(tmp_path, "server { listen 80; server_name a.example; }\n"
                  "server { listen 127.0.0.1:8443 ssl; listen [::1]:8443 ssl; listen 8080;\n"
                  "    server_name a.example b.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n"
                  "server { listen 9443; ssl on; server_name *.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n"
                  "server { listen 443 ssl; server_name a.example;\n"
                  "    ssl_certificate /le/other/fullchain.pem; }\n"
                  "server { listen 7443; ssl off; server_name a.example;\n"
                  "    ssl_certificate /le/a/fullchain.pem; }\n")
    assert certificate_lines.certificate_listens(config, "a.example", "/le/a/fullchain.pem") == [
        ("127.0.0.1", 8443), ("[::1]", 8443), ("*", 9443)]
    assert certificate_lines.certificate_listens(config, "c.example",
                                                 "/le/a/fullchain.pem") == [("*", 9443)]
    assert certificate_lines.certificate_listens(config, "a.example", "/le/b/fullchain.pem") == []


@pytest.mark.parametrize("server_names, old, new, lost", [
    # issue 20 C1: a regex block with a wildcard certificate, a certificate for one name
    ([r"~^(?<sub>[a-z0-9-]+)\.example\.com$"], ["*.example.com"], ["foo.example.com"],
     ["*.example.com"]),
    ([r"~^(www|api)\.example\.com$"], ["*.example.com"], ["foo.example.com"], ["*.example.com"]),
    ([r"~^foo\.example\.com$"], ["*.example.com"], ["foo.example.com"], []),  # only foo
    (["*.example.com"], ["*.example.com"], ["foo.example.com"], ["*.example.com"]),
    (["*.example.com"], ["*.example.com"], ["*.example.com", "example.com"], []),
    ([r"~^(?<sub>.+)\.example\.com$"], ["example.com", "shop.example.com"],
     ["example.com"], ["shop.example.com"]),
    ([r"~^(?<sub>.+)\.example\.com$"], ["*.other.org"], ["a.example.com"], []),  # not served
    ([r"~."], ["snakeoil"], ["a.example.com"], []),  # a placeholder's CN is no name
    (["a.example", "b.example"], ["a.example", "b.example"], ["a.example"], ["b.example"]),
])
def test_answered_certificate_names(server_names, old, new, lost):
    assert certificate_lines.answered_certificate_names(server_names, old, new) == lost
