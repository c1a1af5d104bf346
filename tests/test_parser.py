"""text <-> tree: one construct per file, round-tripped byte for byte."""
import os

import pytest

from certbot_nginx_webroot import parser
from conftest import DATA

CONSTRUCTS = os.path.join(DATA, "constructs")
FILES = sorted(os.listdir(CONSTRUCTS))


@pytest.mark.parametrize("name", FILES)
def test_round_trip_is_byte_exact(name):
    path = os.path.join(CONSTRUCTS, name)
    with open(path, "rb") as f:
        data = f.read()
    conf = parser.parse_file(path)
    assert parser.encode(parser.dump(conf)) == data
    # parse -> dump -> parse gives the same tree
    again = parser.parse(parser.dump(conf), path)
    assert _shape(again.children) == _shape(conf.children)


def _shape(nodes):
    return [(n.name, n.args, n.line, _shape(n.children) if n.children is not None else n.opaque)
            for n in nodes]


def _load(name):
    return parser.parse_file(os.path.join(CONSTRUCTS, name))


def test_comment_inside_quotes_is_an_argument():
    http = _load("comments.conf").children[1]
    server = http.children[0]
    assert server.children[1].args == ["quoted # not comment", "x"]


def test_comments_between_arguments_are_not_arguments():
    log_format = _load("comments-between-args.conf").children[0].children[0]
    assert log_format.name == "log_format"
    assert log_format.args == ["x", "a", "b"]
    assert "# c2" in log_format.raw


def test_quoted_braces_and_semicolons():
    http = _load("quoted-braces.conf").children[0]
    assert http.children[0].args == ["main", "$remote_addr { ; }", "x;y"]
    assert http.children[1].args == ["X-Brace", "}"]


def test_variables_with_braces_and_escaped_braces():
    http = _load("blocks.conf").children[0]
    mapping = http.children[0]
    assert mapping.name == "map" and mapping.args == ["$http_upgrade", "$connection_upgrade"]
    assert [c.name for c in mapping.children] == ["default", "", "~^x\\{2\\}"]
    server = http.children[3]
    assert server.children[0].name == "if"
    assert server.children[0].args == ["($request_method", "=", "POST)"]
    assert server.children[1].args == ["$a", "${host}x"]


def test_lua_block_body_is_opaque():
    location = _load("lua.conf").children[0].children[0].children[1]
    lua = location.children[0]
    assert lua.name == "content_by_lua_block"
    assert lua.children is None and 'ngx.say("{")' in lua.opaque


def test_crlf_is_kept_and_detected():
    conf = _load("crlf.conf")
    assert conf.newline == "\r\n"
    assert conf.children[0].children[0].children[1].args == ["a.example"]


def test_escapes_are_resolved_like_nginx():
    node = _load("escapes.conf").children[0]
    assert node.args == ['a"b', "c'd", "e\\ f"]


def test_every_node_knows_file_and_line():
    conf = _load("blocks.conf")
    nodes = list(parser.walk(conf.children))
    assert all(n.file.endswith("blocks.conf") for n in nodes)
    assert [n.line for n in nodes if n.name == "types"] == [11]


def test_not_utf8_round_trips():
    conf = _load("latin1.conf")
    assert parser.encode(parser.dump(conf)).startswith(b"# latin-1 \xe9t\xe9")


@pytest.mark.parametrize("text,message,line", [
    ("http {\n    server {\n        listen 80;\n    }\n", 'expecting "}"', 5),
    ("http {\n}\n}\n", 'unexpected "}"', 3),
    ("listen 80\n", 'expecting ";" or "}"', 2),
    ('a "b"c;\n', 'unexpected "c"', 1),
    ("http {\n  ;\n}\n", 'unexpected ";"', 2),
    ("x {\n  y z }\n", 'unexpected "}"', 2),
    ('x "unterminated;\n', "unexpected end of file", 2),
    ("content_by_lua_block {\n  x = '\n}\n", "unterminated Lua string", 2),
])
def test_syntax_errors_name_file_and_line(text, message, line):
    with pytest.raises(parser.ParseError) as err:
        parser.parse(text, "/etc/nginx/broken.conf")
    assert err.value.line == line
    assert message in str(err.value)
    assert str(err.value).endswith(f"in /etc/nginx/broken.conf:{line}")


@pytest.mark.parametrize("value", ["/plain/path", "a b", 'q"uote', "semi;colon", "{brace}",
                                   "$host$request_uri", "#hash", ""])
def test_quote_reads_back_as_the_same_value(value):
    node = parser.parse(f"x {parser.quote(value)};").children[0]
    assert node.args == [value]
