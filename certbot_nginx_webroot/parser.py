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

Hosting configs reach 100 000 server blocks (a million directives), so a
node is small: it keeps its text and name only (values and line numbers are
derived when asked), and a line repeated from a template is stored once.
Most directives are plain words; one regular expression reads up to four of
them per call, and the tokenizer takes over wherever that one does not match
(quotes, escapes, comments inside a directive, ``${``, Lua).

Text is decoded as UTF-8 with ``surrogateescape`` so files that are not UTF-8
round-trip byte for byte too.
"""
import contextlib
import gc
import re
import weakref
from typing import Iterator, List, Optional, Tuple

# Whitespace as nginx sees it: space, tab, CR, LF (not \f or \v).
_TRIVIA = re.compile(r"(?:[ \t\r\n]+|#[^\n]*)*")
_TOKEN = re.compile(r"""
    "(?:[^"\\]|\\[\s\S])*"
  | '(?:[^'\\]|\\[\s\S])*'
  | (?:\\[\s\S]|\$\{|[^ \t\r\n;{}#"'\\])(?:\\[\s\S]|\$\{|[^ \t\r\n;{\\])*
""", re.X)
# A directive made of plain words (no quotes, escapes, comments or braces):
# its values are its words, split at nginx's whitespace.  Without the other
# characters str.split() splits at, and in ASCII, split() is that split.
_PLAIN_RAW = re.compile(r"[^;{}#\"'\\]*[;{]")
_SPLIT_SAFE = re.compile(r"[^;{}#\"'\\\x0b\x0c\x1c-\x1f]*[;{]")
_WORD = re.compile(r"[^ \t\r\n]+")
# One step of the parse: the trivia, then a directive made of plain words
# or a "}".  Groups: trivia, raw, name, close.  A comment must run to the end
# of its line: were the rest not to match (a directive with quotes, which
# takes the token-by-token path), backtracking into the comment would read
# its tail as a directive; nor may the name be cut short (the rest of the
# directive would then be retried from every point of a long first word).
# "${" is a variable, not a block: such a directive takes the token-by-token
# path too.
_ITEM = (r"([ \t\r\n]*(?:#[^\n]*(?![^\n])[ \t\r\n]*)*)"
         r"(?:(([^ \t\r\n;{}#\"'\\]+)(?![^ \t\r\n;{}#\"'\\])[^;{}#\"'\\]*"
         r"(?:;|(?<!\$)\{))|(\}))")
# Up to eight steps in one match (each optional after the first): the
# call, not the matching, is most of the cost of a step.
_STEP = re.compile(_ITEM + ("(?:" + _ITEM) * 7 + ")?" * 7)
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
    """One simple directive (a :class:`Block` or :class:`LuaBlock` for the
    block kinds).

    What is stored is the source text: ``raw`` (the directive from its name
    through its ``;`` or ``{``) and ``before`` (the trivia before it); ``name``
    is kept for filtering.  ``args``, the values nginx sees (quotes removed,
    escapes resolved), are read from ``raw`` when asked for, and ``line``
    from the file the node is in (``source``), so a node costs little more
    than its text: a hosting config has a million of them, and few are ever
    looked at twice.  A node refers to its file weakly, so the tree has no
    reference cycle and is freed as soon as it is dropped.
    """

    __slots__ = ("name", "raw", "before", "_home", "_line")
    children: Optional[List["Node"]] = None  # a list in a Block
    tail = ""  # trivia before a block's "}"
    opaque: Optional[str] = None  # a LuaBlock's body

    def __init__(self, name: str, raw: str, before: str,
                 home: Optional["weakref.ref[ConfigText]"] = None) -> None:
        """home: the ``ref`` of the file the node is in."""
        self.name = name
        self.raw = raw
        self.before = before
        self._home = home

    @property
    def args(self) -> List[str]:
        return words_of(self.raw)[1:]

    @property
    def source(self) -> Optional["ConfigText"]:
        """The parsed file the node belongs to."""
        return self._home() if self._home is not None else None

    @property
    def file(self) -> str:
        source = self.source
        return source.path if source is not None else ""

    @property
    def line(self) -> int:
        """The line the directive starts on in its file as read (see
        pin_lines); for a node an edit added, its line in the edited tree;
        0 when it is not in its file."""
        try:
            return self._line
        except AttributeError:
            return line_of(self)

    @property
    def is_block(self) -> bool:
        return self.children is not None or self.opaque is not None

    def __repr__(self) -> str:
        kind = "block" if self.is_block else "directive"
        return f"<{kind} {self.name} {self.args!r} {self.file}:{self.line}>"


class Block(Node):
    """A block directive: ``children`` and the ``tail`` before its ``}``."""

    __slots__ = ("children", "tail")

    def __init__(self, name: str, raw: str, before: str,
                 home: Optional["weakref.ref[ConfigText]"] = None) -> None:
        self.name = name  # Node.__init__ inlined: a call costs, a million times
        self.raw = raw
        self.before = before
        self._home = home
        self.children = []
        self.tail = ""


class LuaBlock(Node):
    """A ``*_by_lua_block``: its body is Lua, kept as one opaque string."""

    __slots__ = ("opaque",)

    def __init__(self, name: str, raw: str, before: str,
                 home: Optional["weakref.ref[ConfigText]"] = None, opaque: str = "") -> None:
        Node.__init__(self, name, raw, before, home)
        self.opaque = opaque


class ConfigText:
    """A parsed file: its top-level nodes and the trivia after the last one.

    ``includes`` lists the include directives found by the parse, so loading
    a config does not search a million nodes for them; edits do not update it.
    """

    __slots__ = ("path", "children", "tail", "newline", "includes", "lines_pinned", "ref",
                 "__weakref__")

    def __init__(self, path: str, children: List[Node], tail: str, newline: str):
        self.path = path
        self.children = children
        self.tail = tail
        self.newline = newline
        self.includes: List[Node] = []
        self.lines_pinned = False
        self.ref = weakref.ref(self)  # what its nodes hold


def value_of(token: str) -> str:
    """The value nginx stores for a token: quotes stripped, escapes applied."""
    if token[0] in "\"'":
        token = token[1:-1]
    if "\\" in token:
        token = _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), token)
    return token


def words_of(raw: str) -> List[str]:
    """The values of a directive's words (its name first), from its raw text."""
    if raw.isascii() and _SPLIT_SAFE.fullmatch(raw):
        return raw[:-1].split()
    if _PLAIN_RAW.fullmatch(raw):  # no quotes, escapes or comments: split
        return _WORD.findall(raw, 0, len(raw) - 1)
    return _read_directive(raw, 0, "<directive>")[0]


def line_of(node: Node) -> int:
    """The line node starts on in its file's tree as it is now (0 when it
    is not in it): the newlines of the text before it, counted."""
    conf = node.source
    if conf is None:
        return 0
    for child, line in _lines(conf):
        if child is node:
            return line
    return 0


def _lines(conf: "ConfigText") -> Iterator[Tuple[Node, int]]:
    """Every node of conf with the line it starts on, in source order."""
    count = 0
    stack = [(iter(conf.children), conf.tail)]
    while stack:
        pending, after = stack[-1]
        for child in pending:
            count += child.before.count("\n")
            yield child, count + 1
            count += child.raw.count("\n")
            if child.children is not None:
                stack.append((iter(child.children), child.tail))
                break
            if child.opaque is not None:
                count += child.opaque.count("\n")
        else:
            stack.pop()
            count += after.count("\n")


def pin_lines(conf: Optional["ConfigText"]) -> None:
    """Before the first edit of a file: fix each node's line at its line in
    the file as read, so that messages point where the user looks (an edit
    that is then refused or rolled back never reaches the disk).  Nodes
    added later report their line in the edited tree."""
    if conf is None or conf.lines_pinned:
        return
    conf.lines_pinned = True
    for node, line in _lines(conf):
        node._line = line


def unpin_lines(conf: "ConfigText") -> None:
    """After the edited tree is written: lines are the tree's own again."""
    if not conf.lines_pinned:
        return
    conf.lines_pinned = False
    for node in walk(conf.children):
        try:
            del node._line
        except AttributeError:
            pass  # added by an edit


def adopt(nodes: List[Node], conf: Optional["ConfigText"]) -> None:
    """Make nodes (parsed elsewhere, e.g. a snippet) and everything under
    them belong to conf, once they are placed in its tree."""
    if conf is None:
        return
    for node in walk(nodes):
        node._home = conf.ref


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
    with building_acyclic_data():
        return _parse(text, path)


@contextlib.contextmanager
def building_acyclic_data() -> Iterator[None]:
    """Pause Python's cycle collector while building a large structure with
    no reference cycles (a parse tree, the servers of a config), then file
    what was built with the oldest objects.

    Left running, the collector walks the growing structure again at every
    generation it passes through: at 100 000 server blocks that took longer
    than the parse itself, and it can find nothing (refcounting frees an
    acyclic tree).  gc.freeze() then gc.unfreeze() moves every tracked
    object to the oldest generation without visiting it; garbage cycles
    made by others are not lost, only left to the next full collection.
    """
    if not gc.isenabled():
        yield
        return
    # unfreeze() would also release what a caller froze (e.g. before a fork).
    promote = gc.get_freeze_count() == 0
    gc.disable()
    try:
        yield
    finally:
        if promote:
            gc.freeze()
            gc.unfreeze()
        gc.enable()


def _parse(text: str, path: str) -> ConfigText:
    n = len(text)
    conf = ConfigText(path, [], "", "\r\n" if "\r\n" in text else "\n")
    siblings = conf.children
    stack: List[tuple] = []  # (parent's sibling list, open block node)
    # One string object for each distinct directive text, name and run of
    # whitespace between directives: configs of many sites are made from
    # templates, so most lines repeat ("listen 443 ssl;", "location / {").
    shared: dict = {}
    share = shared.setdefault
    named: dict = {}  # raw text -> (the one copy of it, its name)
    home = conf.ref
    include = share("include", "include")  # names are compared by identity below
    includes = conf.includes
    step = _STEP.match
    trivia = _TRIVIA.match
    pos = 0
    while True:
        m = step(text, pos)
        if m is not None:
            items = m.groups()
            pos = m.end()
        else:  # not plain words: token by token
            start = trivia(text, pos).end()
            if start >= n:
                break
            c = text[start]
            if c == ";" or c == "{":
                raise ParseError(f'unexpected "{c}"', path, _line_at(text, start))
            words, end_at = _read_directive(text, start, path)
            items = (text[pos:start], text[start:end_at + 1], words[0], None)
            pos = end_at + 1
        fields = iter(items)
        for i, (before, raw, name, close) in enumerate(zip(fields, fields, fields, fields)):
            if before is None:  # the step matched fewer items
                break
            if "#" not in before:
                before = share(before, before)
            if close is not None:
                if not stack:
                    raise ParseError('unexpected "}"', path,
                                     _line_at(text, m.start(4 * i + 4) if m else pos))
                block = stack[-1][1]
                block.tail = before
                siblings = stack.pop()[0]
                continue
            known = named.get(raw)
            if known is None:
                known = named[raw] = (raw, share(name, name))
            raw, name = known
            if raw[-1] == ";":
                siblings.append(Node(name, raw, before, home))
                if name is include:
                    includes.append(siblings[-1])
            elif name.endswith("_by_lua_block"):
                # Its body is Lua: what the step read after it is not nginx's.
                body = m.end(4 * i + 2) if m else pos
                close_at = _lua_body_end(text, body, path)
                siblings.append(LuaBlock(name, raw, before, home, text[body:close_at]))
                pos = close_at + 1
                break
            else:
                block = Block(name, raw, before, home)
                siblings.append(block)
                stack.append((siblings, block))
                siblings = block.children
    if stack:
        raise ParseError('unexpected end of file, expecting "}"', path, _line_at(text, n))
    conf.tail = text[pos:]
    return conf


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
