"""The redirect enhancement (no certbot, no nginx)."""
import pytest

from certbot_nginx_webroot import redirects, sites
from site_configs import M, load, text


def test_a_block_on_both_ports_redirects_plain_http_only(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    listen 443 ssl;\n"
                  "    server_name a.example b.example c.example;\n}\n")
    for name in ("a.example", "b.example"):
        assert redirects.add_redirect(config, sites.answering(config, name, 80)[0], 443, name)
    body = text(config).replace(f"  {M}", "")
    assert body == (
        "server {\n    listen 80;\n    listen 443 ssl;\n"
        "    server_name a.example b.example c.example;\n"
        "    set $nginx_webroot_redirect 0;\n"
        "    if ($host = b.example) {\n        set $nginx_webroot_redirect 1;\n    }\n"
        "    if ($host = a.example) {\n        set $nginx_webroot_redirect 1;\n    }\n"
        "    if ($https) {\n        set $nginx_webroot_redirect 0;\n    }\n"
        "    if ($nginx_webroot_redirect) {\n"
        "        return 301 https://$host$request_uri;\n    }\n}\n")
    server = config.server_blocks()[0]
    assert redirects.redirects_to_https(config, server, "a.example")
    assert redirects.redirects_to_https(config, server, "b.example")
    assert not redirects.redirects_to_https(config, server, "c.example")


def test_redirect_on_another_https_port_names_it(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example;\n}\n")
    match = sites.answering(config, "a.example", 80)[0]
    assert redirects.add_redirect(config, match, 8443, "a.example")
    assert "return 301 https://$host:8443$request_uri;" in text(config)
    assert not redirects.add_redirect(config, sites.answering(config, "a.example", 80)[0], 8443,
                                      "a.example")


@pytest.mark.parametrize("body, expected", [
    ("return 301 https://$host$request_uri;", True),
    ("return https://$host$request_uri;", True),
    ("rewrite ^ https://$host$request_uri? permanent;", True),
    ("rewrite ^(.*)$ https://$host$1 redirect;", True),
    ("rewrite ^/admin https://$host$request_uri? permanent;", False),
    ("if ($request_uri ~ ^/admin) { return 301 https://$host$request_uri; }", False),
    ("if ($host != a.example) { return 301 https://a.example$request_uri; }", False),
    ("if ($host != www.a.example) { return 301 https://a.example$request_uri; }", True),
    ("if ($scheme = http) { return 301 https://$host$request_uri; }", True),
    ("if ($args) { return 301 https://$host$request_uri; }", False),
    ("return 444;\n    return 301 https://$host$request_uri;", False),  # never reached
    ("location / { return 301 https://$host$request_uri; }", True),
    ("location / { return 301 https://$host$request_uri; }\n"
     "    location /api { proxy_pass http://b; }", False),  # /api stays on HTTP
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "    location / { return 301 https://$host$request_uri; }", True),
])
def test_only_a_redirect_of_every_request_counts(tmp_path, body, expected):
    config = load(tmp_path, "server {\n    listen 80;\n    server_name a.example www.a.example;\n"
                  "    %s\n}\n" % body)
    assert redirects.redirects_to_https(config, config.server_blocks()[0], "a.example",
                                        port=80) is expected
