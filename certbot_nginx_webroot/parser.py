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

Hosting configs reach 100 000 server blocks (a million directives), and a
certbot run reads the insides of one or two of them.  So the parse checks
the syntax of everything but builds nodes only where they are asked for:
the body of a block of directives (every server and location block of a
panel's template, quoted values, if blocks and regex locations included)
is kept as its text (``Block.unparsed``) until someone asks for its
children; :func:`direct_directives` reads server_name and listen out of
such a text without building it.  A node is small: it
keeps its text and name only (values and line numbers are derived when
asked), and a line or body repeated from a template is stored once.  One
regular expression reads up to eight plain directives or plain bodies per
call, and the tokenizer takes over wherever that one does not match
(outside such bodies: quotes, escapes, comments inside a directive, ``${``,
Lua).

Text is decoded as UTF-8 with ``surrogateescape`` so files that are not UTF-8
round-trip byte for byte too.
"""
import contextlib
import functools
import gc
import re
import weakref
from typing import Iterator, List, Optional, Tuple

from certbot_nginx_webroot.problems import Problem

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
# One step of the parse: the trivia, then a directive made of plain words,
# a block of them (below), or a "}".  Groups: trivia, raw, name, deferrable,
# body, close.  A comment must run to the end of its line: were the rest not
# to match (a directive with quotes, which takes the token-by-token path),
# backtracking into the comment would read its tail as a directive; nor may
# the name be cut short (the rest of the directive would then be retried
# from every point of a long first word).  "${" is a variable, not a block:
# such a directive takes the token-by-token path too.
_NAME_CHAR = r"[^ \t\r\n;{}#\"'\\]"
_TRIVIA_TEXT = r"[ \t\r\n]*(?:#[^\n]*(?![^\n])[ \t\r\n]*)*"
_ARGS = r"[^;{}#\"'\\]*"
# A block body of directives (with blocks nested in it up to two deep; its
# words as below) is read in the same call and kept as one string until
# someone asks for its children (Block.unparsed): most of a hosting config
# is server and location bodies that a certbot run never reads.  One
# alternation per piece (whitespace, a comment to the end of its line, a
# directive) is the cheapest form for the regex engine.  A body with an include (the parse lists those) or Lua is read
# item by item instead (see _read_nodes).
_WHITESPACE = r"[ \t\r\n]"
_SPACE_RUN = _WHITESPACE + "+(?!" + _WHITESPACE + ")"
# The words of a directive in such a body, read as ngx_conf_read_token
# reads them, and each piece in one way only.  A quote opens a quoted word
# only where a word starts (after whitespace, or as the directive's first
# word); inside a word it is a character (a"b" is one word).  A backslash
# takes the next character whatever it is.  "$" then "{" goes on with the
# word ("${host}" is a variable), so such a "{" opens no block.  After a
# closing quote nginx wants whitespace, ";", "{" or ")" (which starts the
# next word).  Not read here (the item-by-item path reads them): "#" and "}"
# inside a word, a comment between words, an escaped "$" before "{" and
# an escaped whitespace before a quote.
# Written as runs of ordinary characters between the others: a run is one
# step of the regex engine.
_ORDINARY = r"[^;{}#\"'\\]*"  # whitespace included: it only separates words
# An escape; not an escaped "$" before "{", nor an escaped whitespace before
# a quote (that quote is inside a word, but a look behind it would see the
# whitespace).
_WORD_ESCAPE = r"""\\(?:[^$ \t\r\n]|\$(?!\{)|[ \t\r\n](?!["']))"""
# After the opening quote: the rest of a quoted word.
_DOUBLE_QUOTED_REST = r'[^"\\]*(?:\\[\s\S][^"\\]*)*"(?=[ \t\r\n;{)])'
_SINGLE_QUOTED_REST = r"[^'\\]*(?:\\[\s\S][^'\\]*)*'(?=[ \t\r\n;{)])"
# Each branch starts with its character and then looks behind it: the regex
# engine tries a branch only when its first character is there.
_SPECIAL = (_WORD_ESCAPE
            + r"|\{(?<=\$\{)"  # a "$" (not escaped: see _WORD_ESCAPE) then "{"
            + r'|"(?<=[ \t\r\n]")' + _DOUBLE_QUOTED_REST  # a quoted word
            + r"|'(?<=[ \t\r\n]')" + _SINGLE_QUOTED_REST
            + r"""|["'](?<![ \t\r\n]["'])""")  # a quote inside a word
_MORE_WORDS = _ORDINARY + "(?:(?:" + _SPECIAL + ")" + _ORDINARY + ")*"
# A directive's words, from its name up to (not including) its ";" or "{":
# the first word starts with a character that cannot start trivia or end a
# directive, an escape, or a quote.
_BODY_WORDS = (r"""(?:[^ \t\r\n;{}#"'\\]|""" + _WORD_ESCAPE + '|"' + _DOUBLE_QUOTED_REST
               + "|'" + _SINGLE_QUOTED_REST + ")" + _MORE_WORDS)
# A "{" that opens a block: not one after "$".
_BLOCK_OPEN = r"\{(?<!\$\{)"
_COMMENT_LINE = r"#[^\n]*(?![^\n])"


def _plain_body(depth: int) -> str:
    end = ";" if depth == 0 else r"(?:;|" + _BLOCK_OPEN + _plain_body(depth - 1) + r"\})"
    # Each piece matches in one way only (a run of whitespace as a whole,
    # a word as a whole), so a body that does not match fails in linear time.
    return "(?:" + _SPACE_RUN + "|" + _COMMENT_LINE + "|" + _BODY_WORDS + end + ")*"


def _item(number: int) -> str:
    """The regular expression of the number-th step of one match (its
    groups are counted from 6 * number + 1)."""
    deferrable = 6 * number + 4
    # The body is read ahead for every block but http (what the lookup
    # reads) and Lua blocks (their bodies are not nginx syntax).
    return ("(" + _TRIVIA_TEXT + ")"
            "(?:((" + _NAME_CHAR + "+)(?!" + _NAME_CHAR + ")"
            r"(?:(?<!http)(?<!_by_lua_block)()|)" + _ARGS + r"(?:;|(?<!\$)\{))"
            rf"(?({deferrable})(?:(?<=\{{)(" + _plain_body(2) + r")\})?)|(\}))")


# Up to eight steps in one match (each optional after the first): the
# call, not the matching, is most of the cost of a step.
_STEPS = 8
_STEP = re.compile(_item(0) + "".join("(?:" + _item(k) for k in range(1, _STEPS))
                   + ")?" * (_STEPS - 1))
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


class ParseError(Problem):
    """A syntax error, located like nginx locates it: file and line
    (``reason`` is nginx's wording without them)."""

    def __init__(self, reason: str, path: str, line: int) -> None:
        super().__init__(f"{reason} in {path}:{line}", file=path, line=line)
        self.reason = reason

    @property
    def path(self) -> str:
        return self.file


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
    unparsed: Optional[str] = None  # a Block's body until its children are built

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
        return (self.unparsed is not None or self.children is not None
                or self.opaque is not None)

    def __repr__(self) -> str:
        kind = "block" if self.is_block else "directive"
        return f"<{kind} {self.name} {self.args!r} {self.file}:{self.line}>"


class Block(Node):
    """A block directive: ``children`` and the ``tail`` before its ``}``.

    The parse may keep a body of plain directives as its text (``unparsed``)
    and build the children the first time they are asked for: a hosting
    config is mostly server and location bodies that a certbot run never
    reads.
    """

    __slots__ = ("_children", "_tail", "unparsed")

    def __init__(self, name: str, raw: str, before: str,
                 home: Optional["weakref.ref[ConfigText]"] = None,
                 unparsed: Optional[str] = None) -> None:
        self.name = name  # Node.__init__ inlined: a call costs, a million times
        self.raw = raw
        self.before = before
        self._home = home
        self.unparsed = unparsed
        if unparsed is None:
            self._children = []
            self._tail = ""

    @property
    def children(self) -> List[Node]:
        if self.unparsed is not None:
            self._build()
        return self._children

    @children.setter
    def children(self, nodes: List[Node]) -> None:
        if self.unparsed is not None:
            self._build()
        self._children = nodes

    @property
    def tail(self) -> str:
        if self.unparsed is not None:
            self._build()
        return self._tail

    @tail.setter
    def tail(self, text: str) -> None:
        if self.unparsed is not None:
            self._build()
        self._tail = text

    def _build(self) -> None:
        """Parse the body kept as text into children (it parsed once
        already: it has no include, no Lua, and no syntax error)."""
        body = self.unparsed
        children: List[Node] = []
        conf = self.source
        tail = _read_nodes(body, conf.path if conf is not None else "<string>",
                           self._home, children, [])
        self._children, self._tail, self.unparsed = children, tail, None
        try:
            first_line = self._line
        except AttributeError:
            return  # lines counted in the tree as it is (see line)
        # Built after its file's lines were pinned: pin the new nodes to
        # their lines in the file as read too.
        _pin(children, tail, first_line + self.raw.count("\n"))


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
    """Every node of conf with the line it starts on, in source order
    (not those of a block whose body is still unparsed)."""
    return _lines_of(conf.children, conf.tail, 0)


def _lines_of(nodes: List[Node], tail: str, count: int) -> Iterator[Tuple[Node, int]]:
    """Nodes (and the built ones under them) with their lines, when the
    line before the first of them is count."""
    stack = [(iter(nodes), tail)]
    while stack:
        pending, after = stack[-1]
        for child in pending:
            count += child.before.count("\n")
            yield child, count + 1
            count += child.raw.count("\n")
            if child.unparsed is not None:
                count += child.unparsed.count("\n")
            elif child.children is not None:
                stack.append((iter(child.children), child.tail))
                break
            elif child.opaque is not None:
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
    _pin(conf.children, conf.tail, 1)


def _pin(nodes: List[Node], tail: str, first_line: int) -> None:
    for node, line in _lines_of(nodes, tail, first_line - 1):
        node._line = line


def unpin_lines(conf: "ConfigText") -> None:
    """After the edited tree is written: lines are the tree's own again."""
    if not conf.lines_pinned:
        return
    conf.lines_pinned = False
    for node in _built(conf.children):
        try:
            del node._line
        except AttributeError:
            pass  # added by an edit


def adopt(nodes: List[Node], conf: Optional["ConfigText"]) -> None:
    """Make nodes (parsed elsewhere, e.g. a snippet) and everything under
    them belong to conf, once they are placed in its tree.  (A body still
    unparsed gives its nodes its block's file when it is built.)"""
    if conf is None:
        return
    for node in _built(nodes):
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
    conf = ConfigText(path, [], "", "\r\n" if "\r\n" in text else "\n")
    conf.tail = _read_nodes(text, path, conf.ref, conf.children, conf.includes)
    return conf


def _read_nodes(text: str, path: str, home: Optional["weakref.ref[ConfigText]"],
                siblings: List[Node], includes: List[Node]) -> str:
    """Parse text as the body of a file: append its nodes to siblings, and
    its include directives to includes; return the trivia after the last.
    (One loop, the items of a step inline: it runs a million times.)"""
    stack: List[tuple] = []  # (parent's sibling list, open block node)
    # One string object for each distinct directive text, name, run of
    # whitespace between directives and unparsed body: configs of many sites
    # are made from templates, so most lines repeat ("listen 443 ssl;",
    # "location / {").
    shared: dict = {}
    share = shared.setdefault
    named: dict = {}  # raw text -> (the one copy of it, its name)
    include = share("include", "include")  # names are compared by identity below
    step = _STEP.match
    pos = 0
    while True:
        m = step(text, pos)
        if m is not None:
            items = m.groups()
            pos = m.end()
        else:  # not plain words: token by token
            read = _token_step(text, pos, path)
            if read is None:
                break
            items, pos = read
        fields = iter(items)
        for i, (before, raw, name, _, body, close) in enumerate(
                zip(fields, fields, fields, fields, fields, fields)):
            if before is None:  # the step matched fewer items
                break
            if "#" not in before:
                before = share(before, before)
            if close is not None:
                siblings = _close_block(stack, before, text, path,
                                        m.start(6 * i + 6) if m else pos)
                continue
            known = named.get(raw)
            if known is None:
                known = named[raw] = (raw, share(name, name))
            raw, name = known
            if raw[-1] == ";":
                siblings.append(Node(name, raw, before, home))
                if name is include:
                    includes.append(siblings[-1])
            elif (body is not None and "include" not in body
                  and "_by_lua_block" not in body):
                siblings.append(Block(name, raw, before, home, share(body, body)))
            elif name.endswith("_by_lua_block"):
                # Its body is Lua: what the step read after it is not nginx's.
                pos = _add_lua_block(text, m.end(6 * i + 2) if m else pos, path, siblings,
                                     LuaBlock(name, raw, before, home))
                break
            else:
                block = Block(name, raw, before, home)
                siblings.append(block)
                stack.append((siblings, block))
                siblings = block._children
                if body is not None:  # read ahead, but not to be deferred
                    pos = m.end(6 * i + 2)
                    break
    if stack:
        raise ParseError('unexpected end of file, expecting "}"', path, _line_at(text, len(text)))
    return text[pos:]


def _token_step(text: str, pos: int, path: str) -> Optional[Tuple[tuple, int]]:
    """One step of the parse read token by token (quotes, escapes, comments
    inside a directive, ...): the items of _STEP's first step (trivia, raw,
    name, then None for the rest) and the position after it; None at the
    end of text."""
    start = _TRIVIA.match(text, pos).end()
    if start >= len(text):
        return None
    c = text[start]
    if c == ";" or c == "{":
        raise ParseError(f'unexpected "{c}"', path, _line_at(text, start))
    words, end_at = _read_directive(text, start, path)
    return (text[pos:start], text[start:end_at + 1], words[0], None, None, None), end_at + 1


def _close_block(stack: List[tuple], before: str, text: str, path: str, at: int) -> List[Node]:
    """A "}" at index at of text closes the innermost open block (before is
    the trivia before it): returns the sibling list to go on with."""
    if not stack:
        raise ParseError('unexpected "}"', path, _line_at(text, at))
    siblings, block = stack.pop()
    block._tail = before
    return siblings


def _add_lua_block(text: str, body_at: int, path: str, siblings: List[Node],
                   block: "LuaBlock") -> int:
    """Append block, a Lua block whose body starts at body_at, with that
    body; returns the position after its closing brace."""
    close_at = _lua_body_end(text, body_at, path)
    block.opaque = text[body_at:close_at]
    siblings.append(block)
    return close_at + 1


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


# In an unparsed body a "#" starts a comment unless it is in a quoted word
# (a word of _BODY_WORDS never holds one otherwise).
_COMMENT = re.compile(r"#[^\n]*")
_INNERMOST_BLOCK = re.compile(r"\{[^{}]*\}")
# What only a body with quoted words, escapes or "${" holds: in such a body
# ";", "{", "}", "#" and names may be inside words, so it is read word by word.
_NOT_PLAIN = re.compile(r"[\"'\\]|\$\{")


@functools.lru_cache(maxsize=None)
def _directive_named(names: Tuple[str, ...]) -> "re.Pattern[str]":
    # The first character is a literal: the regex engine skips to each ";".
    return re.compile(";[ \t\r\n]*((" + "|".join(map(re.escape, names))
                      + ")(?=[ \t\r\n;])[^;]*)(?=;)")


@functools.lru_cache(maxsize=None)
def _next_directive_named(names: Tuple[str, ...]) -> "re.Pattern[str]":
    """From the start of a piece of an unparsed body: the pieces up to the
    next simple directive called one of names (group 1: that directive,
    without its ";").  Built from the body's own grammar (_plain_body), so
    it splits the body into pieces exactly where the parse did."""
    alternatives = "|".join(map(re.escape, names))
    # The name as nginx reads it: a word, or quoted ("listen" is listen).
    named = ("(?:(?:" + alternatives + ")(?=[ \t\r\n;{])|(?:\"(?:" + alternatives
             + ")\"|'(?:" + alternatives + ")')(?=[ \t\r\n;{)]))")
    other = ("(?:" + _SPACE_RUN + "|" + _COMMENT_LINE + "|(?!" + named + ")" + _BODY_WORDS
             + ";|" + _BODY_WORDS + _BLOCK_OPEN + _plain_body(1) + r"\})")
    return re.compile("(?:" + other + ")*(" + named + _MORE_WORDS + ");")


def direct_directives(block: Node,
                      names: Tuple[str, ...]) -> List[Tuple[str, str, List[str]]]:
    """(name, raw, args) of the simple directives called one of names
    directly in block (not in blocks nested in it), in order.

    An unparsed body is not built for this: the lookup reads server_name and
    listen of every server block, and a hosting config has 100 000 of them.
    Such a body of plain words, with its comments removed and its nested
    blocks replaced by ";", has a directive start after a ";" (or at the
    start) and end at the next one.  A body with quoted words is read piece
    by piece with the parse's own grammar, up to its last such directive."""
    body = block.unparsed
    if body is None:
        return [(child.name, child.raw, child.args) for child in block.children
                if child.name in names]
    # (Four scans for a character are faster than one regex search.)
    if '"' in body or "'" in body or "\\" in body or "${" in body:
        special = _NOT_PLAIN.search(body)
        # Before its first quote, escape or "${" the body is plain.  When the
        # directives asked for all come before that (as templates write
        # listen and server_name first), and no block does, read the plain
        # part: it ends at a ";" that ends a directive or is in a comment.
        cut = body.rfind(";", 0, special.start()) + 1
        if max(map(body.rfind, names)) >= cut or body.find("{", 0, cut) >= 0:
            return _directives_in_words(body, names)
        body = body[:cut]
    if "#" in body:
        body = _COMMENT.sub("", body)
    nested = body.find("{")
    if nested >= 0:
        for name in names:
            if body.find(name, nested) >= 0:
                while "{" in body:  # innermost first: as deep as the body nests
                    body = _INNERMOST_BLOCK.sub(";", body)
                break
        else:  # none after the first block (as templates write them): cut there
            body = body[:nested]
    # Plain words: for printable ASCII (no tab or newline either), str.split()
    # splits them as nginx does.
    return [(name, raw + ";", raw.split()[1:] if raw.isascii() and raw.isprintable()
             else words_of(raw + ";")[1:])
            for raw, name in _directive_named(names).findall(";" + body)]


def _directives_in_words(body: str, names: Tuple[str, ...]) -> List[Tuple[str, str, List[str]]]:
    """direct_directives of an unparsed body with quoted words."""
    match = _next_directive_named(names).match
    # No name in the text after the last one found: nothing more to find
    # (most templates write listen and server_name first).
    last = max(map(body.rfind, names))
    found = []
    pos = 0
    while pos <= last:
        m = match(body, pos)
        if m is None:
            break
        raw = m.group(1) + ";"
        if raw.isascii() and raw.isprintable() and _PLAIN_RAW.fullmatch(raw):
            words = raw[:-1].split()  # plain words (see direct_directives)
        else:
            words = words_of(raw)
        found.append((words[0], raw, words[1:]))
        pos = m.end()
    return found


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
            if node.unparsed is not None:
                append(node.unparsed)
                append("}")
            elif node.children is not None:
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
    if node.unparsed is not None:
        out.extend((node.unparsed, "}"))
    elif node.children is not None:
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
    return _walk(nodes, True)


def _built(nodes: List[Node]) -> Iterator[Node]:
    """walk(), without building the children of unparsed bodies."""
    return _walk(nodes, False)


def _walk(nodes: List[Node], build: bool) -> Iterator[Node]:
    stack = [iter(nodes)]
    while stack:
        for node in stack[-1]:
            yield node
            if (build or node.unparsed is None) and node.children is not None:
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
