"""nginx's rewrite module at the server level: one rule for which return or
rewrite answers every request, or every request for one URI."""
import pytest

from certbot_nginx_webroot import challenge_location, parser, rewrites
from certbot_nginx_webroot.config import Config


def node(text):
    return parser.parse(text).children[0]


@pytest.mark.parametrize("directive, every, challenge", [
    ("return 404;", True, True),
    ("rewrite ^ https://$host$request_uri? permanent;", True, True),
    ("rewrite ^/(.*)$ /index.php?q=$1 last;", True, True),
    # Only the challenge path: it answers challenge requests, not every request.
    (r"rewrite ^/\.well-known/acme-challenge/(.*)$ https://acme.example/$1 redirect;",
     False, True),
    ("rewrite ^/old$ /new last;", False, False),
    # Python cannot read it: it may answer a challenge, and is no known every-URI form.
    (r"rewrite \Qx\E /y last;", False, True),
    ("if ($host = a.example) { return 301 https://a.example$request_uri; }", False, False),
    ("set $x 1;", False, False),
])
def test_answers_every_request_or_every_request_for_a_uri(directive, every, challenge):
    assert rewrites.answers(node(directive)) is every
    assert rewrites.answers_every_request(node(directive)) is every
    assert rewrites.answers(node(directive), challenge_location.challenge_uri()) is challenge


def test_a_redirect_of_the_challenge_path_alone_leaves_the_locations_reachable(tmp_path):
    (tmp_path / "nginx.conf").write_text(
        "http {\n    server {\n        listen 80;\n"
        "        rewrite ^/\\.well-known/(.*)$ https://acme.example/$1 redirect;\n"
        "        location / { root /srv; }\n    }\n}\n")
    config = Config.load(str(tmp_path / "nginx.conf"))
    server = config.server_blocks()[0]
    assert not rewrites.locations_unreachable(config, server)
    assert not rewrites.only_redirects(config, server)
    assert rewrites.may_answer(config, server.children[1], challenge_location.challenge_uri())
