"""Bodies with quoted words, escapes, "${", if blocks and regex locations
kept unparsed (issue 20, G): they must build exactly the tokenizer's tree,
and direct_directives must read them as the built tree does."""
import os
import random
import sys
import time

import pytest

from certbot_nginx_webroot import parser
from test_parser import _corpus_texts, _full_shape, _token_by_token

NAMES = ("server_name", "listen", "ssl")


def _lines(nodes):
    return [(n.line, _lines(n.children) if n.children is not None else None) for n in nodes]


def _deferred(conf):
    return [n for n in parser._built(conf.children) if n.unparsed is not None]


def _direct(block):
    """direct_directives as the built children give them (simple ones)."""
    return [(n.name, n.raw, n.args) for n in block.children
            if n.name in NAMES and not n.is_block]


def _same_as_tokenizer(text):
    """parse() gives what the tokenizer gives: the same tree, lines, dump,
    direct_directives of every unparsed body, or the same error.  Returns
    the number of bodies kept unparsed (None for an error)."""
    try:
        slow = _token_by_token(text, "f")
    except parser.ParseError as err:
        with pytest.raises(parser.ParseError) as fast_err:
            parser.parse(text, "f")
        assert (fast_err.value.message, fast_err.value.line) == (err.message, err.line), text
        return None
    fast = parser.parse(text, "f")
    assert parser.dump(fast) == text
    deferred = _deferred(fast)
    found = [parser.direct_directives(block, NAMES) for block in deferred]
    assert all(block.unparsed is not None for block in deferred)
    assert _full_shape(fast.children) == _full_shape(slow.children), text
    assert _lines(fast.children) == _lines(slow.children), text
    assert parser.dump(fast) == text
    for block, directives in zip(deferred, found):
        if not any(n.name in NAMES and n.is_block for n in block.children):
            assert directives == _direct(block), (text, block.raw)
    return len(deferred)


def _case(start):
    """The one case of QUOTED that starts with start."""
    [text] = [t for t in QUOTED if t.startswith(start)]
    return text


QUOTED = [
    # A quoted value holding ";", "{", "}", "#", "$", "${", escapes, newlines.
    'server {\n    add_header X "a # b { c } ; d";\n    return 200 \'x;y\';\n}\n',
    'server {\n    return 301 "https://$host$request_uri";\n}\n',
    'server {\n    set $a "${host}x";\n    set $b \'${\';\n    set $c "$";\n}\n',
    'server {\n    add_header X "say \\"hi\\" \\\\";\n    add_header Y \'it\\\'s\';\n}\n',
    'server {\n    return 200 "line one\nline two;\n}";\n}\n',
    'server {\n    return 200 "";\n    return 200 \'\';\n}\n',
    # A quote inside a word is a character: a"b" is one word.
    'server {\n    set $a a"b";\n    set $b a\'b;\n    set $c a"b c";\n}\n',
    # A quoted name, and ")" right after a closing quote (it starts a word).
    'server {\n    "listen" 80;\n    \'server_name\' a;\n'
    '    if ($a = "b") {\n        return 403;\n    }\n}\n',
    'server {\n    if ($host = "a")x {\n        "ssl")y;\n    }\n}\n',
    # if blocks and regex locations (escapes, "$" before " {").
    'server {\n    if ($request_uri ~* "^/(a|b)\\.php$") { return 404; }\n'
    '    location ~* \\.(js|css)$ {\n        expires 30d;\n    }\n'
    '    location ~ ^/x/(?<n>[^/]+)$ { return 200 $n; }\n}\n',
    # A map body: quoted keys first.
    'map $http_host $site {\n    default 0;\n    "~^www\\.(?<d>.+)$" 1;\n    \'a b\' 2;\n}\n',
    # "$" then "{" goes on with the word; "{" after an escaped "$" opens a block.
    'server {\n    location ~ ^/a${b}$ {\n    }\n    set $x a${;\n    set $y $${;\n}\n',
    'server {\n    location ~ ^/a\\${\n    }\n}\n',
    'server {\n    set $x \\\\${y;\n}\n',
    # An escaped whitespace before a quote: the quote is inside the word.
    'server {\n    set $x a\\ "b c";\n    set $y a\\\t\'b;\n}\n',
    # What the item-by-item path reads: "#" or "}" in a word, comments
    # between words, Lua, include.
    'server {\n    set $x a#b;\n    set $y ${z};\n    log_format x # c\n    y;\n}\n',
    'server {\n    content_by_lua_block { ngx.say("}") }\n}\n',
    'server {\n    include "a.conf";\n}\n',
    # Not nginx syntax: every error as the tokenizer says it.
    'server {\n    return 200 "x"y;\n}\n',
    'server {\n    return 200 "x\n}\n',
    "server {\n    return 200 'x'\"y\";\n}\n",
    'server {\n    add_header "a" }\n}\n',
    'server {\n    "a";\n    "b" {\n    }\n    \\;;\n}\n',
    # direct_directives: a ";" or a name inside a quoted value is not taken.
    'server {\n    add_header X "; listen 81;";\n    listen 80;\n'
    '    return 200 \'{ listen 82; }\';\n'
    '    server_name "a.example" \'b.example\';\n    location / { listen 83; }\n'
    '    add_header Y "# ; listen 84";\n    ssl on;\n}\n',
    'server {\n    add_header X "\\";listen 81;";\n    listen 80 "ssl";\n}\n',
    'server {\n    location / {\n        return 200 "}";\n    }\n    listen 80;\n}\n',
    'server {\n    # listen 81; "\n    listen 80;\n    # \'\n    server_name a;\n}\n',
    # The directives asked for before the first quote (as templates write them).
    'server {\n    listen 80; # a; it\'s\n    server_name a b;\n    root "/srv";\n'
    '    location / { return 200 "ok"; }\n}\n',
    'server {\n    listen 80;\n    root "/srv";\n    server_name a;\n}\n',
    'server {\n    listen 80;\n    location / { }\n    server_name a;\n    root "/srv";\n}\n',
]


@pytest.mark.parametrize("text", QUOTED)
def test_a_quoted_body_builds_the_tokenizers_tree(text):
    _same_as_tokenizer(text)


@pytest.mark.parametrize("text", [
    QUOTED[0], QUOTED[1], QUOTED[2], QUOTED[3], QUOTED[4], QUOTED[6], QUOTED[7], QUOTED[9],
    QUOTED[10], QUOTED[13], _case('server {\n    add_header X "; listen'),
])
def test_a_body_with_quoted_values_is_kept_unparsed(text):
    conf = parser.parse(text)
    assert conf.children[0].unparsed is not None
    assert _same_as_tokenizer(text) >= 1


def test_what_the_quoted_grammar_leaves_to_the_item_by_item_path():
    # "}" or "#" inside a word, a comment between words, an escaped "$"
    # before "{", an escaped whitespace before a quote: read item by item.
    for body in ("set $y ${z};", "set $x a#b;", "log_format x # c\n y;", "x \\${ }",
                 "set $x a\\ \"b\";"):
        conf = parser.parse("server {\n" + body + "\n}\n")
        assert conf.children[0].unparsed is None, body
        _same_as_tokenizer("server {\n" + body + "\n}\n")


def test_direct_directives_do_not_take_what_is_inside_a_quoted_value():
    conf = parser.parse(_case('server {\n    add_header X "; listen'))
    server = conf.children[0]
    found = parser.direct_directives(server, NAMES)
    assert server.unparsed is not None
    assert found == [
        ("listen", "listen 80;", ["80"]),
        ("server_name", "server_name \"a.example\" 'b.example';", ["a.example", "b.example"]),
        ("ssl", "ssl on;", ["on"])]
    server = parser.parse(_case('server {\n    add_header X "\\";')).children[0]
    assert parser.direct_directives(server, NAMES) == [
        ("listen", 'listen 80 "ssl";', ["80", "ssl"])]
    # A quoted name is the directive (nginx strips the quotes).
    server = parser.parse(QUOTED[7]).children[0]
    assert [d[0] for d in parser.direct_directives(server, NAMES)] == ["listen", "server_name"]


def test_the_bench_configs_build_the_tokenizers_tree():
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "bench"))
    import parse_bench
    for shape in ("plain", "panel-quoted"):
        for distinct in (False, True):
            text = parse_bench.generate(30, distinct, shape)
            conf = parser.parse(text)
            http = conf.children[1]
            assert all(n.unparsed is not None for n in http.children if n.name == "server")
            assert _same_as_tokenizer(text) >= 30


# --- random configs against the tokenizer ---

_WORDS = ["listen", "server_name", "ssl", "a", "b1", "$x", "${y}", "${", "$", "a$", "x)", ")",
          "(", "(a", "\\;", "\\{", "\\}", '\\"', "\\n", "a\\ ", "\\\t", "a#b", "a}b", 'a"b"',
          "a'b", '"q"', "'q'", '"a;b"', '"{"', '"}"', '"#x"', "'a # b { c }'", '"say \\"hi\\""',
          "'it\\'s'", '"line\nbreak"', '"${host}"', '"$"', '""', "''", '"listen"', "'listen'",
          '"server_name"', '"ssl")', '"a")b', '"\\\\"', "\\$", "$$", "\xe9", "~*", "\\.(js|css)$"]
_RARE = ["#", "}", "{", ";", '"a\\', "include", "x_by_lua_block", "a\\", "'", '"']
_SEPARATORS = [" ", " ", "  ", "\n", "\t", "\r\n", " # c ; { \" '\n", "\n    "]


def _word(r):
    if r.random() < 0.05:
        return r.choice(_RARE)
    if r.random() < 0.6:
        return r.choice(_WORDS)
    # Words joined: quotes inside words, escapes next to variables.
    unquoted = [w for w in _WORDS if w[0] not in "\"'"]
    return "".join(r.choice(unquoted) for _ in range(r.randint(2, 3)))


def _directive(r, depth):
    out = [r.choice(["listen", "server_name", "ssl", "set", "add_header", "location", "if",
                     "return", '"listen"', "'ssl'", "default", '"~*x"', _word(r)])]
    out += [r.choice(_SEPARATORS) + _word(r) for _ in range(r.randint(0, 4))]
    out.append(r.choice(["", "", " ", "\n"]))
    if depth < 4 and r.random() < 0.3:
        return "".join(out) + "{" + _body(r, depth + 1) + "}"
    return "".join(out) + ";"


def _body(r, depth):
    parts = []
    for _ in range(r.randint(0, 6)):
        parts.append(r.choice(["\n    ", " ", "\n", "", "\n# c ; { } \" '\n", "  # x\n"]))
        parts.append(_directive(r, depth))
    parts.append(r.choice(["\n", " ", ""]))
    return "".join(parts)


def _random_config(r):
    text = "".join(r.choice(["server {", "http {\nserver {", "location / {", "map $a $b {"])
                   + _body(r, 1) + "}" + r.choice(["", "}", "\n"]) for _ in range(r.randint(1, 3)))
    if r.random() < 0.15:
        chars = list(text)
        for _ in range(r.randint(1, 3)):
            chars.insert(r.randrange(len(chars) + 1),
                         r.choice(['"', "'", "\\", "{", "}", ";", "#", "$", " ", "\n", ")"]))
        text = "".join(chars)
    return text


@pytest.mark.parametrize("seed", range(4))
def test_random_configs_build_the_tokenizers_tree(seed):
    r = random.Random(seed)
    kept = 0
    for _ in range(2500):
        kept += bool(_same_as_tokenizer(_random_config(r)))
    assert kept > 200  # enough of them exercise the unparsed bodies


def test_direct_directives_of_every_corpus_body_with_quotes():
    compared = 0
    for path, text in _corpus_texts():
        try:
            conf = parser.parse(text, path)
        except parser.ParseError:
            continue
        for block in _deferred(conf):
            if not parser._NOT_PLAIN.search(block.unparsed):
                continue
            found = parser.direct_directives(block, NAMES)
            assert found == _direct(block), (path, block.line)
            compared += 1
    from conftest import CORPUS
    assert compared > (90 if os.path.isdir(CORPUS) else 0), compared


# --- linear time on pathological bodies of 1 MB ---

_MB = 1 << 20


@pytest.mark.parametrize("body", [
    ' "x"' * (_MB // 4),  # quoted words, then no ";"
    ' "' + '\\"' * (_MB // 2),  # a quote never closed
    " a\\ " * (_MB // 4) + '"',  # escaped spaces, then a quote
    ' a"' * (_MB // 3) + ";",  # quotes inside words
    " $" * (_MB // 2) + "{",
    " ${" * (_MB // 3),
    " 'a'" * (_MB // 4) + ' "',
    " " * _MB + "'",
    ' a "b"' * (_MB // 6) + " c}d;",
    ' \\' * (_MB // 2),
    ' "a")' * (_MB // 5) + '"',
])
def test_a_pathological_body_is_read_in_linear_time(body):
    text = "server {\n    x" + body + "\n}\nserver {\n    listen \"80\";\n}\n"
    start = time.perf_counter()
    try:
        parser.parse(text)
    except parser.ParseError:
        pass
    # Linear: well under a second on this machine; quadratic: hours.
    assert time.perf_counter() - start < 20
