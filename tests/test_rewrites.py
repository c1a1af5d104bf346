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


@pytest.mark.parametrize("directive,expected", [
    ("return 301 https://$host$request_uri;", True),
    ("return 404;", True),
    ("rewrite ^ https://$host$request_uri? permanent;", True),
    ("rewrite ^/(.*)$ /index.php?q=$1 last;", True),  # rewrites the challenge away
    ("rewrite ^/old$ /new last;", False),
    ("if ($host = a.example) { return 301 https://$host$request_uri; }", False),  # conditional
    ("if ($bad_bot) { return 403; }", False),
    ("set $x 1;", False),
])
def test_answers_every_request(directive, expected):
    assert rewrites.answers_every_request(parser.parse(directive).children[0]) is expected


@pytest.mark.parametrize("condition, values, expected", [
    ("($host = a.example)", {}, True),
    ("($host = b.example)", {}, False),
    ("($host = A.example)", {}, False),  # $host is lower case; = compares bytes
    ('($host = "a.example")', {}, True),
    ("($host != b.example)", {}, True),
    ("($host != a.example)", {}, False),
    ("($host ~* ^(www\\.)?A\\.example$)", {}, True),
    ("($host ~ ^www\\.)", {}, False),
    ("($host !~ ^www\\.)", {}, True),
    ("($host !~* a)", {}, False),
    ("($scheme = http)", {}, True),
    ("($scheme != https)", {}, True),
    ("($https)", {}, False),
    ("($https != on)", {}, True),
    ("($host)", {}, True),
    ("($server_port = 80)", {"port": 80}, True),
    ("($server_port = 80)", {"port": 8080}, False),
    ("($server_port = 80)", {}, False),  # port unknown
    ("($request_uri ~ ^/admin)", {}, False),
    ("($uri ~ ^/)", {}, False),
    ("($args)", {}, False),
    ("($bad_bot)", {}, False),
    ("($host = $server_name)", {}, False),
    ("(-f $request_filename)", {}, False),
    ("(!-e $request_filename)", {}, False),
])
def test_condition_holds_for_every_request_of_the_name(condition, values, expected):
    node = parser.parse("if %s { return 301 https://x; }" % condition).children[0]
    parsed = rewrites.if_condition(node)
    holds = parsed is not None and rewrites.condition_holds(
        parsed, rewrites.plain_request("a.example", values.get("port")))
    assert holds is expected


@pytest.mark.parametrize("regex, expected", [
    ("^", True), ("^/", True), ("/", True), ("^(.*)$", True), ("^/(.*)$", True),
    ("^/(.*)", True), (".*", True), ("^.*$", True), ("(.*)", True), ("^(.+)$", True),
    ("^/(.+)$", False), ("^/$", False), ("^/admin", False), ("^/(.*)\\.php$", False),
    ("^$", False), ("^/.*\\$", False),
])
def test_matches_every_uri(regex, expected):
    assert rewrites.matches_every_uri(regex) is expected
