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


# --- the fast path, and what a node costs (issue 13: 100 000 server blocks) ---

def _full_shape(nodes):
    """Everything dump() writes, node by node."""
    return [(n.name, n.args, n.before, n.raw, n.tail, n.opaque,
             _full_shape(n.children) if n.children is not None else None) for n in nodes]


def _token_by_token(text, path):
    """parse() with its fast path switched off: every directive read by the
    tokenizer that follows nginx's rule for rule (a "}" needs no reading)."""
    fast = parser._STEP
    # Only the trivia and "}" of a step: no directive is ever read by it.
    parser._STEP = parser.re.compile(parser._item(0).replace("(?:((", "(?:(?!)((", 1))
    try:
        return parser.parse(text, path)
    finally:
        parser._STEP = fast


def _corpus_texts():
    from conftest import CORPUS
    for directory, _, files in os.walk(CORPUS):
        for name in sorted(files):
            if name != "SOURCES.md":
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    yield path, parser.decode(f.read())
    for name in FILES:
        path = os.path.join(CONSTRUCTS, name)
        with open(path, "rb") as f:
            yield path, parser.decode(f.read())


def test_fast_path_reads_every_file_as_the_tokenizer_does():
    """The one-regex path for plain directives must build exactly the tree
    the token-by-token path builds, on every real config we have."""
    compared = 0
    for path, text in _corpus_texts():
        try:
            slow = _token_by_token(text, path)
        except parser.ParseError as err:
            with pytest.raises(parser.ParseError) as fast_err:
                parser.parse(text, path)
            assert (fast_err.value.message, fast_err.value.line) == (err.message, err.line)
            continue
        assert _full_shape(parser.parse(text, path).children) == _full_shape(slow.children), path
        compared += 1
    from conftest import CORPUS
    assert compared > (300 if os.path.isdir(CORPUS) else len(FILES) // 2)


@pytest.mark.parametrize("text", [
    # A comment's tail must never be read as a directive, whatever follows.
    '# a b;\nadd_header X "y";\n',
    "# a b {\nx 'y' {\n}\n",
    "x 1; # c d;\ny \"2\";\n",
    # "${" is a variable, not a block; a "$" before " {" is a word's end.
    "set $a ${b};\nlocation ~ ^/x$ {\n}\nset $c x${d}y;\nlocation ~ ^/a${b}c$ {\n}\n",
    # Lua right after plain directives read in the same step.
    "a 1; b 2; content_by_lua_block { x = '}' } c 3; }\n"[:-3] + "\n",
    "a {} b { c; } }\n"[:-3] + "\n",
    "a\n  b\n  c;\n",
])
def test_fast_path_edge_cases_match_the_tokenizer(text):
    fast = parser.parse(text)
    assert _full_shape(fast.children) == _full_shape(_token_by_token(text, "<string>").children)
    assert parser.dump(fast) == text


def test_a_comment_ending_in_a_directive_stays_a_comment():
    conf = parser.parse('# keep alive 1;\nadd_header X "y";\n')
    assert [(n.name, n.args) for n in conf.children] == [("add_header", ["X", "y"])]
    assert conf.children[0].before == "# keep alive 1;\n"


def test_repeated_lines_share_one_string():
    conf = parser.parse("http {\n    listen 80;\n    listen 80;\n}\nhttp {\n    listen 80;\n}\n")
    first, second = conf.children[0].children
    assert first.raw is second.raw and first.before is second.before
    assert conf.children[0].raw is conf.children[1].raw
    assert first.raw is conf.children[1].children[0].raw
    # Bodies kept unparsed are shared too.
    conf = parser.parse("server {\n    listen 80;\n}\nserver {\n    listen 80;\n}\n")
    assert conf.children[0].unparsed is conf.children[1].unparsed is not None


def test_a_dropped_tree_is_freed_without_the_cycle_collector():
    import gc
    gc.collect()
    gc.disable()
    try:
        conf = parser.parse("http {\n    server {\n        listen 80;\n    }\n}\n", "a.conf")
        assert conf.children[0].children[0].children[0].file == "a.conf"
        del conf
        # Refcounting alone freed it: the collector finds no cycle to break.
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_parse_leaves_the_collector_as_it_found_it():
    import gc
    assert gc.isenabled()
    parser.parse("a 1;")
    assert gc.isenabled()
    gc.disable()
    try:
        parser.parse("a 1;")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_lines_stay_those_of_the_file_as_read_until_it_is_saved(tmp_path):
    """Messages name lines of the file the user has: an edit that is then
    refused or rolled back never reaches the disk."""
    from certbot_nginx_webroot import config as nginx_config, edit
    path = tmp_path / "nginx.conf"
    path.write_text("http {\n    server {\n        listen 80;\n    }\n}\n")
    config = nginx_config.Config.load(str(path))
    conf = config.files[str(path)]
    server = conf.children[0].children[0]
    listen = server.children[0]
    assert (server.line, listen.line) == (2, 3)
    added = edit.insert(server, 0, "server_name a;\nroot /srv;", "\n", str(path))
    config.mark_changed(server)
    assert listen.line == 3  # as read
    assert [n.line for n in added] == [3, 4]  # not in the file as read: as edited
    assert added[0].source is conf and added[0].file == str(path)
    config.save()
    assert listen.line == 5 and added[1].line == 4  # the file on disk now
    edit.remove(server, 0)
    assert listen.line == 5  # as read (saved) again
    assert (server.line, parser.line_of(listen)) == (2, 4)


def test_a_long_first_word_before_a_quote_is_read_in_linear_time():
    # The fast path once retried every shorter name of a word it could not
    # finish (a quoted value follows): quadratic, minutes for this map.
    keys = "".join(f"/{'p' * 300}/{i} \"https://x/{i}\";\n" for i in range(3000))
    conf = parser.parse("map $uri $new {\n" + keys + "}\n" + "a" * 200000 + ' "x";\n')
    assert len(conf.children[0].children) == 3000
    assert conf.children[1].args == ["x"]


def test_parse_keeps_a_callers_frozen_objects_frozen():
    import gc
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        parser.parse("a 1;")
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


def test_the_parse_lists_its_include_directives_in_order():
    conf = parser.parse('include a;\nhttp {\n    server { "include" b; }\n    include c*.conf;\n}\n'
                        "events { x 'include'; }\n")
    assert [n.args for n in conf.includes] == [["a"], ["b"], ["c*.conf"]]


# --- bodies kept unparsed until asked for (issue 13: 100 000 server blocks) ---

@pytest.mark.parametrize("text", [
    # Deferred: plain directives, nested three deep, comments, blank lines.
    "server {\n    # c { ;\n    listen 80;\n\n    location / {\n        if ($x) {\n"
    "            limit_except GET { deny all; }\n        }\n    }\n}\n",
    # Read item by item instead: include, Lua, "}" in a word, four deep.
    # (Quoted values and "${" are kept unparsed: test_parser_quoted.py.)
    "location / {\n    include fastcgi_params;\n}\n",
    "location / {\n    content_by_lua_block { ngx.say(1) }\n}\n",
    "location / {\n    set $a ${b}c;\n}\n",
    'location / {\n    return 200 "x";\n}\n',
    "a { b { c { d { e { f; } } } } }\n",
    # A run of whitespace before what does not match: still one way to read it.
    "events {\n" + " " * 5000 + "\n" * 5000 + "x 'y';\n}\n",
])
def test_an_unparsed_body_builds_the_tree_the_tokenizer_builds(text):
    fast = parser.parse(text)
    assert parser.dump(fast) == text  # before anything is built
    assert _full_shape(fast.children) == _full_shape(_token_by_token(text, "<string>").children)
    assert parser.dump(fast) == text  # and after


def test_what_is_kept_unparsed():
    conf = parser.parse("http {\n    server {\n        listen 80;\n        location / { a b; }\n"
                        "    }\n    server {\n        include x;\n        location / { a b; }\n"
                        "    }\n}\nstream { server { listen 53; } }\n"
                        "events { x ${y}; }\n")
    http, stream, events = conf.children
    plain, with_include = http.children
    assert http.unparsed is None  # what the lookup reads
    assert plain.unparsed == "\n        listen 80;\n        location / { a b; }\n    "
    assert with_include.unparsed is None  # the parse lists include directives
    assert with_include.children[1].unparsed == " a b; "  # its location is plain
    assert stream.unparsed is not None and events.unparsed is None
    assert all(block.is_block for block in (plain, stream))
    assert [n.args for n in conf.includes] == [["x"]]
    # Asking for the children builds them once; the body is then dropped.
    listen = plain.children[0]
    assert plain.unparsed is None and plain.children[0] is listen
    assert (listen.name, listen.args, listen.file, listen.line) == ("listen", ["80"], "<string>", 3)


def test_a_body_built_after_an_edit_has_the_lines_of_the_file_as_read(tmp_path):
    from certbot_nginx_webroot import config as nginx_config, edit
    path = tmp_path / "nginx.conf"
    path.write_text("http {\n    server {\n        listen 80;\n    }\n    server {\n"
                    "        listen 81;\n        location / {\n            a b;\n"
                    "        }\n    }\n}\n")
    config = nginx_config.Config.load(str(path))
    first, second = config.files[str(path)].children[0].children
    assert second.unparsed is not None
    edit.insert(first, 0, "server_name a;\nroot /srv;", "\n", str(path))
    # Built after the edit: lines as read, not as edited (two lines down).
    location = second.children[1]
    assert (second.children[0].line, location.line, location.children[0].line) == (6, 7, 8)


@pytest.mark.parametrize("body", [
    "listen 80;",
    "\n  # listen 1; {\n  listen 80; listen\t[::]:80 ssl;\n"
    "  location / { types { listen 9; } if (x) { return 1; } }\n"
    "  ssl_x on;\n  xlisten 2;\n  proxy_set_header listen 3;\n"
    "  server_name a b;server_name\nc\n;\n  ssl on;\n  listen 81\n default_server;\n",
    "location / { server_name no; } server_name yes;",
    "server_name \xe9.example;",
])
def test_direct_directives_of_an_unparsed_body_are_those_of_the_built_one(body):
    names = ("server_name", "listen", "ssl")
    block = parser.parse("server {" + body + "}").children[0]
    assert block.unparsed is not None
    found = parser.direct_directives(block, names)
    assert block.unparsed is not None  # not built for this
    block.children
    assert found == parser.direct_directives(block, names) == [
        (n.name, n.raw, n.args) for n in block.children if n.name in names]


def test_direct_directives_of_every_corpus_server_block():
    names = ("server_name", "listen", "ssl")
    compared = 0
    for path, text in _corpus_texts():
        try:
            conf = parser.parse(text, path)
        except parser.ParseError:
            continue
        blocks = [n for n in parser._built(conf.children) if n.unparsed is not None]
        for block in blocks:
            found = parser.direct_directives(block, names)
            assert found == [(n.name, n.raw, n.args) for n in block.children
                             if n.name in names], (path, block.line)
            compared += 1
    from conftest import CORPUS
    assert compared > (300 if os.path.isdir(CORPUS) else 0), compared


def test_a_block_an_edit_added_counts_its_childrens_lines_in_the_edited_tree():
    from certbot_nginx_webroot import edit
    conf = parser.parse("http {\nserver {\n    listen 80;\n    root /x;\n}\n}\n", "f")
    copy = edit.copy_after(conf.children[0], 0, "\n")
    assert [n.line for n in copy.children] == [8, 9]
    edit.insert(copy, 0, "a 1;\nb 2;", "\n", "f")
    assert [(n.name, n.line) for n in copy.children] == [
        ("a", 8), ("b", 9), ("listen", 10), ("root", 11)]
