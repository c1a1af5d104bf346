"""nginx configuration text <-> tree, losslessly.

The tokenizer follows nginx's own (``ngx_conf_read_token`` in
src/core/ngx_conf_file.c) rule for rule, so what nginx accepts parses and what
nginx rejects as a syntax error raises :class:`ParseError` with the file and
line, using nginx's own wording.  Every byte of the input is kept in the tree:

* ``Node.before`` holds the whitespace and comments before a directive,
* ``Node.raw`` holds the directive itself, from its name through the ``;`` or
  ``{`` that ends it (so comments between arguments stay where they were),
* ``Node.tail`` holds what comes between a block's last child and its ``}``.

``dump(parse(text)) == text`` for every text that parses.  Bodies of
``*_by_lua_block`` directives are Lua, not nginx syntax; they are kept as one
opaque string.

Text is decoded as UTF-8 with ``surrogateescape`` so files that are not UTF-8
round-trip byte for byte too.
"""
import re
from typing import Iterator, List, Optional

# Whitespace as nginx sees it: space, tab, CR, LF (not \f or \v).
_TRIVIA = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_TOKEN = re.compile(r"""
    "(?:[^"\\]|\\[\s\S])*"
  | '(?:[^'\\]|\\[\s\S])*'
  | (?:\\[\s\S]|\$\{|[^ \t\r\n;{}#"'\\])(?:\\[\s\S]|\$\{|[^ \t\r\n;{\\])*
""", re.X)
# Fast path for the common directive: plain words (no quotes, escapes,
# comments or braces) separated by whitespace.  The class also leaves out
# every character str.split() would split on, so split() is exact here;
# anything else takes the token-by-token path.
_PLAIN_CHARS = (r"[^ \t\r\n;{}#\"'\\$\x0b\x0c\x1c-\x1f\x85\xa0\u1680\u2000-\u200a"
                r"\u2028\u2029\u202f\u205f\u3000]")
_DOLLAR = r"\$(?!\{)"  # "${" is nginx's variable syntax, not a block
# Written so that every character has one way to match (no backtracking blow-up).
_PLAIN = rf"(?:{_PLAIN_CHARS}+|{_DOLLAR}{_PLAIN_CHARS}*)(?:{_DOLLAR}{_PLAIN_CHARS}*)*"
_SIMPLE_DIRECTIVE = re.compile(rf"({_PLAIN}(?:[ \t\r\n]+{_PLAIN})*)[ \t\r\n]*([;{{])")
# After a closing quote nginx wants one of these, else "unexpected ...".
_AFTER_QUOTE = frozenset(" \t\r\n;{)")
_ESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}
# Inside a Lua block only strings and comments can hide braces.
_LUA_TOKEN = re.compile(r"""
    --\[(=*)\[[\s\S]*?\]\1\]
  | --[^\n]*
  | \[(=*)\[[\s\S]*?\]\2\]
  | "(?:[^"\\\n]|\\[\s\S])*"
  | '(?:[^'\\\n]|\\[\s\S])*'
  | ["']
  | [{}]
""", re.X)

ENCODING = "utf-8"
ERRORS = "surrogateescape"


class ParseError(ValueError):
    """A syntax error, located like nginx locates it: file and line."""

    def __init__(self, message: str, path: str, line: int) -> None:
        super().__init__(f"{message} in {path}:{line}")
        self.message = message
        self.path = path
        self.line = line


class Node:
    """One directive; a block directive when ``children`` is not None.

    ``name`` and ``args`` are the values nginx sees (quotes removed, escapes
    resolved); ``raw`` is the exact source text.
    """

    __slots__ = ("name", "args", "before", "raw", "children", "tail", "opaque",
                 "file", "line")

    def __init__(self, name: str, args: List[str], before: str, raw: str,
                 children: Optional[List["Node"]] = None, tail: str = "",
                 opaque: Optional[str] = None, file: str = "", line: int = 0):
        self.name = name
        self.args = args
        self.before = before
        self.raw = raw
        self.children = children
        self.tail = tail
        self.opaque = opaque
        self.file = file
        self.line = line

    @property
    def is_block(self) -> bool:
        return self.children is not None or self.opaque is not None

    def __repr__(self) -> str:
        kind = "block" if self.is_block else "directive"
        return f"<{kind} {self.name} {self.args!r} {self.file}:{self.line}>"


class ConfigText:
    """A parsed file: its top-level nodes and the trivia after the last one."""

    __slots__ = ("path", "children", "tail", "newline")

    def __init__(self, path: str, children: List[Node], tail: str, newline: str):
        self.path = path
        self.children = children
        self.tail = tail
        self.newline = newline


def value_of(token: str) -> str:
    """The value nginx stores for a token: quotes stripped, escapes applied."""
    if token[0] in "\"'":
        token = token[1:-1]
    if "\\" in token:
        token = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), token)
    return token


def _line_at(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _lua_body_end(text: str, pos: int, path: str) -> int:
    """Index of the ``}`` that closes a Lua block whose body starts at pos."""
    depth = 1
    for m in _LUA_TOKEN.finditer(text, pos):
        tok = m.group()
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth == 0:
                return m.start()
        elif tok in ("'", '"'):
            raise ParseError("unterminated Lua string", path, _line_at(text, m.start()))
    raise ParseError('unexpected end of file, expecting "}"', path, _line_at(text, len(text)))


def parse(text: str, path: str = "<string>") -> ConfigText:
    """Parse nginx configuration text into a :class:`ConfigText`."""
    n = len(text)
    root: List[Node] = []
    siblings = root
    stack: List[tuple] = []  # (parent's sibling list, open block node)
    pos = 0
    line = 1
    counted = 0  # text[:counted] has been counted into `line`
    trivia = _TRIVIA.match
    simple = _SIMPLE_DIRECTIVE.match
    count = text.count
    while True:
        gap_start = pos
        pos = trivia(text, pos).end()
        if pos >= n:
            break
        c = text[pos]
        if c == "}":
            if not stack:
                raise ParseError('unexpected "}"', path, _line_at(text, pos))
            block = stack[-1][1]
            block.tail = text[gap_start:pos]
            siblings = stack.pop()[0]
            pos += 1
            continue
        if c == ";" or c == "{":
            raise ParseError(f'unexpected "{c}"', path, _line_at(text, pos))
        start = pos
        line += count("\n", counted, start)
        counted = start
        m = simple(text, pos)
        if m is not None:
            values = m.group(1).split()
            c = m.group(2)
            pos = m.end() - 1
        else:
            values, pos = _read_directive(text, pos, path)
            c = text[pos]
        node = Node(values[0], values[1:], text[gap_start:start], text[start:pos + 1],
                    file=path, line=line)
        siblings.append(node)
        pos += 1
        if c == "{":
            if values[0].endswith("_by_lua_block"):
                end = _lua_body_end(text, pos, path)
                node.opaque = text[pos:end]
                pos = end + 1
            else:
                node.children = []
                stack.append((siblings, node))
                siblings = node.children
    if stack:
        raise ParseError('unexpected end of file, expecting "}"', path, _line_at(text, n))
    newline = "\r\n" if "\r\n" in text else "\n"
    return ConfigText(path, root, text[gap_start:], newline)


def _read_directive(text: str, pos: int, path: str):
    """Read a directive's words token by token from pos; returns their
    values and the index of the ';' or '{' that ends it."""
    n = len(text)
    trivia = _TRIVIA.match
    token = _TOKEN.match
    words = []
    while True:
        m = token(text, pos)
        if m is None:
            # An opening quote without its closing one runs to the end of file.
            raise ParseError('unexpected end of file, expecting ";" or "}"', path,
                             _line_at(text, n))
        tok = m.group()
        words.append(tok)
        pos = m.end()
        if tok[0] in "\"'":
            if pos >= n:
                raise ParseError('unexpected end of file, expecting ";" or "}"',
                                 path, _line_at(text, n))
            if text[pos] not in _AFTER_QUOTE:
                raise ParseError(f'unexpected "{text[pos]}"', path, _line_at(text, pos))
        pos = trivia(text, pos).end()
        if pos >= n:
            raise ParseError('unexpected end of file, expecting ";" or "}"', path,
                             _line_at(text, n))
        c = text[pos]
        if c == ";" or c == "{":
            return [value_of(w) if (w[0] in "\"'" or "\\" in w) else w for w in words], pos
        if c == "}":
            raise ParseError('unexpected "}"', path, _line_at(text, pos))


def dump_nodes(nodes: List[Node], tail: str, out: List[str]) -> None:
    """Append the source text of nodes (and the trailing trivia) to out.
    Iterative, so any nesting depth nginx accepts dumps."""
    append = out.append
    # (children still to dump, trivia after them, whether a "}" closes them)
    stack = [(iter(nodes), tail, False)]
    while stack:
        pending, after, closes = stack[-1]
        for node in pending:
            append(node.before)
            append(node.raw)
            if node.children is not None:
                stack.append((iter(node.children), node.tail, True))
                break
            if node.opaque is not None:
                append(node.opaque)
                append("}")
        else:
            stack.pop()
            append(after)
            if closes:
                append("}")


def dump(conf: ConfigText) -> str:
    out: List[str] = []
    dump_nodes(conf.children, conf.tail, out)
    return "".join(out)


def dump_node(node: Node) -> str:
    """The source text of one node, without the trivia before it."""
    out = [node.raw]
    if node.children is not None:
        dump_nodes(node.children, node.tail, out)
        out.append("}")
    elif node.opaque is not None:
        out.extend((node.opaque, "}"))
    return "".join(out)


def decode(data: bytes) -> str:
    return data.decode(ENCODING, ERRORS)


def encode(text: str) -> bytes:
    return text.encode(ENCODING, ERRORS)


def parse_file(path: str) -> ConfigText:
    with open(path, "rb") as f:
        return parse(decode(f.read()), path)


def walk(nodes: List[Node]) -> Iterator[Node]:
    """Every node under nodes, depth first, in source order (no includes).
    Iterative, so any nesting depth nginx accepts walks."""
    stack = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            yield node
            if node.children is not None:
                stack.append(iter(node.children))
                break
        else:
            stack.pop()


# One way to match each character, so a near miss fails fast.
_BARE = re.compile(r"""(?:[^ \t\r\n;{}#"'\\$]|\$\w+(?!\w)|\$\{\w+\})+""", re.ASCII)


def quote(value: str) -> str:
    """A token that nginx reads back as value: bare when safe, else quoted."""
    if _BARE.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
