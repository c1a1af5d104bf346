"""The challenge location and the guard before server-level redirects (no certbot,
no nginx)."""
import pytest

from certbot_nginx_webroot import challenge_location, effective
from site_configs import M, load, text


def test_certbot_style_redirect_block_gets_the_guard_first(tmp_path):
    source = ("server {\n    if ($host = a.example) {\n"
              "        return 301 https://$host$request_uri;\n    } # managed by Certbot\n"
              "    listen 80;\n    server_name a.example;\n"
              "    return 404; # managed by Certbot\n}\n")
    config = load(tmp_path, source)
    challenge_location.ensure_challenge_location(config, config.server_blocks()[0], "/w",
                                                 "a.example")
    # Every user line stays as it was; the guard goes before the first
    # server-level directive that may answer (the conditional if).
    assert text(config).startswith(
        f'server {{\n    if ($uri ~ "^/\\.well-known/acme-challenge/[-_A-Za-z0-9]+$") {{  {M}\n'
        f"        break;  {M}\n    }}  {M}\n    if ($host = a.example) {{\n")
    assert "".join(line for line in text(config).splitlines(True) if M not in line) == source
    server = config.server_blocks()[0]
    assert effective.select_location(config, server, challenge_location.challenge_uri()) == [
        n for n in server.children if n.name == "location"]


def test_guard_leaves_included_locations_behind_the_return(tmp_path):
    (tmp_path / "locs.inc").write_text("location /api { proxy_pass http://b; }\n")
    config = load(tmp_path, "server {\n    listen 80;\n    include locs.inc;\n"
                  "    return 301 https://$host$request_uri;\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    body = text(config)
    assert "    return 301 https://$host$request_uri;\n" in body  # still at server level
    assert body.index("break;") < body.index("return 301")
    assert "location / " not in body


def test_conditional_if_alone_gets_no_guard(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    if ($bad_bot) { return 403; }\n"
                  "    location / { proxy_pass http://b; }\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    assert "break;" not in text(config)
    assert [n.line for n in challenge_location.server_level_ifs(config, server)] == [3]


OLD_LOCATION = (  # as 0.1.0 added it
    "    location ^~ /.well-known/acme-challenge/ {  %s\n        root /w;  %s\n"
    "        default_type text/plain;  %s\n        try_files $uri =404;  %s\n"
    "    }  %s\n" % ((M,) * 5))


def test_an_older_challenge_location_gets_get_only_once(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n" + OLD_LOCATION + "}\n")
    server = config.server_blocks()[0]
    assert challenge_location.limit_challenge_methods(config, server)
    assert text(config) == ("server {\n    listen 80;\n" + OLD_LOCATION.replace(
        "=404;  %s\n" % M, "=404;  %s\n        limit_except GET {  %s\n"
        "            deny all;  %s\n        }  %s\n" % ((M,) * 4)) + "}\n")
    assert not challenge_location.limit_challenge_methods(config, server)  # once


@pytest.mark.parametrize("location", [
    OLD_LOCATION.replace("        root /w;  %s\n" % M, "        root /w;\n"),  # edited by hand
    "    location ^~ /.well-known/acme-challenge/ { root /w; }\n",  # the user's own
])
def test_a_users_challenge_location_is_not_edited(tmp_path, location):
    config = load(tmp_path, "server {\n    listen 80;\n" + location + "}\n")
    assert not challenge_location.limit_challenge_methods(config, config.server_blocks()[0])
    assert not config.changed


def test_the_new_challenge_location_limits_methods(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n}\n")
    server = config.server_blocks()[0]
    challenge_location.ensure_challenge_location(config, server, "/w", "a.example")
    assert "        limit_except GET {  %s\n            deny all;  %s\n" % (M, M) in text(config)
    assert not challenge_location.limit_challenge_methods(config, server)


@pytest.mark.parametrize("locations, expected", [
    ("", False),  # nothing serves challenges
    ("location / { root /srv; }", False),  # files, but the whole site too
    ("location ^~ /.well-known/acme-challenge/ { root /w; }", True),
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "location ~ \\.php$ { proxy_pass http://b; }", True),  # tokens have no dot
    ("location /.well-known/acme-challenge/ { root /w; }\n"
     "location ~ [a-z]$ { proxy_pass http://b; }", False),  # takes some tokens
    ("location ^~ /.well-known/acme-challenge/ { root /w; }\n"
     "location /.well-known/acme-challenge/A { proxy_pass http://b; }", False),
    ("location ^~ /.well-known/acme-challenge/ { root /w;\n"
     "    location ~ Z$ { proxy_pass http://b; } }", False),
    ("location ^~ /.well-known/acme-challenge/ { proxy_pass http://b; }", False),
    ("location /.well-known/ { alias /w/.well-known/; }", True),
    ("location /.well-known/ { proxy_pass http://b; }", False),
])
def test_serves_challenge_files(tmp_path, locations, expected):
    config = load(tmp_path, "server {\n    listen 80;\n    %s\n}\n" % locations)
    assert challenge_location.serves_challenge_files(config, config.server_blocks()[0]) is expected


def test_a_redirect_only_block_without_a_challenge_location_gets_no_guard(tmp_path):
    config = load(tmp_path, "server {\n    listen 80;\n    if ($office = 0) { return 403; }\n"
                  "    return 301 https://$host$request_uri;\n}\n")
    assert challenge_location.guard_challenges(config, config.server_blocks()[0]) is None
    assert not config.changed
