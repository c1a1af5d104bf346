"""Smallest-change edits of a parsed tree.

An "owner" is anything with ``children`` and ``tail``: a block node or a
whole file.  New text is indented like its neighbours and uses the file's
line endings; nothing outside the edited lines changes.  Every line added is
marked with :data:`MARK` so users can see what the plugin manages.
"""
import re
from typing import List, Optional, Sequence

from certbot_nginx_webroot import parser
from certbot_nginx_webroot.parser import Node

MARK = "# certbot-nginx-webroot"
_NAME_SEP = re.compile(r"^([^ \t\r\n]+)([ \t\r\n]+)")


def indent_of(node: Node) -> str:
    """The indentation of the line node starts on ("" when unknown)."""
    before = node.before
    i = before.rfind("\n")
    if i < 0:
        return ""
    tail = before[i + 1:]
    return tail if tail.strip(" \t") == "" else ""


def _unit(indent: str) -> str:
    return "\t" if "\t" in indent else "    "


def indent_unit(owner, indent: str) -> str:
    """One level of indentation as this block's author wrote it: what its
    children's indentation adds to its own (two spaces in h5bp's files, a tab
    in Debian's); four spaces when the block does not tell."""
    own = indent_of(owner) if isinstance(owner, Node) else ""
    if indent.startswith(own) and len(indent) > len(own):
        return indent[len(own):]
    return _unit(indent)


def child_indent(owner, index: int) -> str:
    """Indentation for a new child of owner at index."""
    children = owner.children
    for i in (index - 1, index, *range(len(children))):
        if 0 <= i < len(children) and "\n" in children[i].before:
            return indent_of(children[i])
    own = indent_of(owner) if isinstance(owner, Node) else None
    if own is None:
        return ""
    return own + _unit(own)


def _split_gap(gap: str):
    """Split the trivia between two nodes into what stays on the earlier
    node's line (e.g. its trailing comment) and the rest."""
    i = gap.find("\n")
    if i < 0:
        return None
    if i > 0 and gap[i - 1] == "\r":
        i -= 1
    return gap[:i], gap[i:]


def _gap(owner, index: int) -> str:
    children = owner.children
    return children[index].before if index < len(children) else owner.tail


def _set_gap(owner, index: int, text: str) -> None:
    _editing(owner)
    children = owner.children
    if index < len(children):
        children[index].before = text
    else:
        owner.tail = text


def _parse_snippet(snippet: str, indent: str, unit: str, newline: str, path: str):
    """Parse snippet (lines separated by \\n, nested lines indented by four
    spaces) re-indented to indent, one level being unit, with the given line
    ending."""
    lines = []
    for n, line in enumerate(snippet.split("\n")):
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 4
        lines.append(("" if n == 0 else indent) + unit * depth + stripped)
    return parser.parse(newline.join(lines), path)


def _file_of(owner) -> Optional[parser.ConfigText]:
    return owner if isinstance(owner, parser.ConfigText) else owner.source


def _editing(owner) -> None:
    """Called before every change to owner's file: lines in messages stay
    those of the file as read (see parser.pin_lines)."""
    parser.pin_lines(_file_of(owner))


def insert(owner, index: int, snippet: str, newline: str, path: str) -> List[Node]:
    """Insert the directives of snippet as children of owner at index."""
    _editing(owner)
    indent = child_indent(owner, index)
    conf = _parse_snippet(snippet, indent, indent_unit(owner, indent), newline, path)
    nodes = conf.children
    gap = _gap(owner, index)
    split = _split_gap(gap)
    if split is None:  # a one-line block: stay on that line
        nodes[0].before = " "
        rest = _after_snippet(owner, index, conf.tail, gap, newline)
    else:
        same_line, rest = split
        nodes[0].before = same_line + newline + indent
        rest = conf.tail + rest
    _set_gap(owner, index, rest)
    owner.children[index:index] = nodes
    parser.adopt(nodes, _file_of(owner))
    return nodes


def replace(owner, index: int, snippet: str, newline: str, path: str) -> List[Node]:
    """Replace the child at index by the directives of snippet, which take
    its place and its leading trivia."""
    _editing(owner)
    old = owner.children[index]
    indent = indent_of(old) if "\n" in old.before else child_indent(owner, index)
    conf = _parse_snippet(snippet, indent, indent_unit(owner, indent), newline, path)
    nodes = conf.children
    nodes[0].before = old.before
    after = _gap(owner, index + 1)
    owner.children[index:index + 1] = nodes
    parser.adopt(nodes, _file_of(owner))
    _set_gap(owner, index + len(nodes),
             _after_snippet(owner, index + len(nodes), conf.tail, after, newline))
    return nodes


def _after_snippet(owner, index: int, tail: str, gap: str, newline: str) -> str:
    """The trivia after inserted text: the snippet's own tail, then the gap
    that followed.  When the snippet's last line ends in a comment (its
    marker) and what followed was on the same line (a one-line block), that
    rest moves to a line of its own: the comment would swallow it."""
    if "#" not in tail.rsplit("\n", 1)[-1] or "\n" in gap:
        return tail + gap
    if index < len(owner.children):
        indent = child_indent(owner, index)
    else:  # the owner's closing brace follows
        indent = indent_of(owner) if isinstance(owner, Node) else ""
    return tail + newline + indent + gap.lstrip(" \t")


def take_trailing(owner, index: int) -> str:
    """Detach and return the text after child index on its own line (its
    trailing comment, stripped), so it can move with the node."""
    gap = _gap(owner, index + 1)
    split = _split_gap(gap)
    if split is None or not split[0].strip():
        return ""
    _set_gap(owner, index + 1, split[1])
    return split[0].strip()


def remove(owner, index: int) -> Node:
    """Remove the child at index with the trivia before it and its trailing
    comment."""
    _editing(owner)
    take_trailing(owner, index)
    return owner.children.pop(index)


def set_args(owner, index: int, args: Sequence[str]) -> Node:
    """Give an existing simple directive new arguments, keeping its name,
    the spacing after its name, and its place; mark its line."""
    _editing(owner)
    node = owner.children[index]
    m = _NAME_SEP.match(node.raw)
    head = m.group(0) if m else node.raw.split(";")[0] + " "
    node.raw = head + " ".join(parser.quote(a) for a in args) + ";"
    mark_line_after(owner, index + 1)
    return node


def mark_line_after(owner, index: int) -> None:
    """Mark the line that ends before child index (or before the closing
    brace) unless it already carries a comment."""
    gap = _gap(owner, index)
    split = _split_gap(gap)
    if split is None:
        return  # the line goes on (a one-line block): a comment would swallow the rest
    if split[0].strip():
        return  # keep the user's own comment; never stack comments
    _set_gap(owner, index, "  " + MARK + gap)


def mark_block(owner, index: int) -> None:
    """Mark every line of the block at owner.children[index] (its opening
    and closing lines and every directive in it) that carries no comment."""
    pending = [(owner, index)]  # iterative: blocks may nest deeply
    while pending:
        owner, index = pending.pop()
        block = owner.children[index]
        mark_line_after(owner, index + 1)  # the closing brace's line
        if block.children is None:
            continue
        mark_line_after(block, 0)  # the opening line
        for i, child in enumerate(block.children):
            if child.children is not None:
                pending.append((block, i))
            else:
                mark_line_after(block, i + 1)


def copy_after(owner, index: int, newline: str) -> Node:
    """Insert a copy of the block at index right after it, separated by a
    blank line, and return the copy."""
    _editing(owner)
    node = owner.children[index]
    indent = indent_of(node)
    conf = parser.parse(parser.dump_node(node), node.file)
    copy = conf.children[0]
    # What follows the block on its closing line (a space, a comment) stays
    # on that line, before the copy.
    gap = _gap(owner, index + 1)
    split = _split_gap(gap)
    if split is None:  # the closing line is the file's last, or goes on
        split = (gap, newline if isinstance(owner, parser.ConfigText) else "")
    same_line, rest = split
    copy.before = same_line + newline + newline + indent
    _set_gap(owner, index + 1, rest)
    owner.children.insert(index + 1, copy)
    parser.adopt([copy], _file_of(owner))
    return copy


def nest(text: str, depth: int) -> str:
    """User text (e.g. a dumped block) in the snippet format of insert and
    replace: one line per line, indented four spaces per brace depth."""
    out = []
    for line in text.replace("\r\n", "\n").split("\n"):
        stripped = line.strip()
        if stripped.startswith("}"):
            depth -= 1
        out.append("    " * depth + stripped)
        depth += stripped.count("{") - stripped.count("}") + (1 if stripped.startswith("}") else 0)
    return "\n".join(out)
