"""nginx's regular expressions (PCRE) as Python's ``re``: one translation,
used wherever the plugin decides what a regex of the configuration matches
(server_name, location, ``if``, ``rewrite``).

nginx compiles them with PCRE (PCRE2 since 1.21.5); Python's ``re`` reads
most of that syntax the same way.  Translated here, outside character
classes (where none of these mean anything special):

* named groups ``(?<name>...)`` and ``(?'name'...)``, in Python's spelling
  ``(?P<name>...)`` (nginx fills variables from them);
* named back references ``\\k<name>``, ``\\k'name'``, ``\\k{name}`` and
  ``\\g{name}``, as ``(?P=name)``;
* the end anchors: PCRE's ``\\z`` (the very end) is Python's ``\\Z``, and
  PCRE's ``\\Z`` (the end, or before a final newline) is ``(?=\\n?\\Z)``.

Anything else Python cannot read (``\\Q...\\E``, ``\\h``, callouts,
recursion) leaves the pattern unread: :func:`compile` returns None and the
caller decides what not knowing means.
"""
import re
from typing import List, Optional

_NAME = r"[A-Za-z_]\w*"
_GROUP_NAME = re.compile(r"\(\?(?:<(" + _NAME + r")>|'(" + _NAME + r")')")
_BACK_REFERENCE = re.compile(r"\\(?:k<(" + _NAME + r")>|k'(" + _NAME + r")'|k\{("
                             + _NAME + r")\}|g\{(" + _NAME + r")\})")
_ESCAPES = {"z": r"\Z", "Z": r"(?=\n?\Z)"}
# POSIX classes inside a character class (``[[:alpha:]_]``), as ASCII PCRE
# reads them by default.
_POSIX_CLASS = re.compile(r"\[:(\^?)([a-z]+):\]")
_POSIX_MEMBERS = {
    "alnum": "a-zA-Z0-9", "alpha": "a-zA-Z", "digit": "0-9", "lower": "a-z",
    "upper": "A-Z", "xdigit": "0-9A-Fa-f", "space": r" \t\n\r\f\v", "blank": r" \t",
    "word": r"\w", "punct": r"!-/:-@\[-`{-~", "cntrl": r"\x00-\x1f\x7f",
    "print": r" -~", "graph": r"!-~", "ascii": r"\x00-\x7f",
}


def to_python(pattern: str) -> str:
    """pattern (PCRE, as nginx reads it) in Python's ``re`` syntax."""
    out: List[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "[":
            end = _class_end(pattern, i)
            out.append("[" + _POSIX_CLASS.sub(_posix_members, pattern[i + 1:end]))
            i = end
        elif c == "\\":
            m = _BACK_REFERENCE.match(pattern, i)
            if m:
                out.append(f"(?P={next(g for g in m.groups() if g)})")
                i = m.end()
            else:
                escaped = pattern[i:i + 2]
                out.append(_ESCAPES.get(escaped[1:], escaped))
                i += 2
        elif c == "(":
            m = _GROUP_NAME.match(pattern, i)
            if m:
                out.append(f"(?P<{m.group(1) or m.group(2)}>")
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _posix_members(m: "re.Match[str]") -> str:
    members = _POSIX_MEMBERS.get(m.group(2))
    if members is None or m.group(1):  # a negated one has no spelling inside a class
        raise re.error(f"POSIX class {m.group(0)} not translated")
    return members


def _class_end(pattern: str, start: int) -> int:
    """The index after the ``]`` that closes the class opened at start (a
    ``]`` right after ``[`` or ``[^`` is a member); the end when unclosed."""
    i = start + 1
    if pattern[i:i + 1] == "^":
        i += 1
    if pattern[i:i + 1] == "]":
        i += 1
    n = len(pattern)
    while i < n:
        posix = _POSIX_CLASS.match(pattern, i)
        if posix:
            i = posix.end()
        elif pattern[i] == "\\":
            i += 2
        elif pattern[i] == "]":
            return i + 1
        else:
            i += 1
    return n


def compile(pattern: str, caseless: bool) -> Optional["re.Pattern[str]"]:  # noqa: A001
    """pattern as Python's ``re`` matches it, ignoring case when caseless
    (nginx: ``~*`` locations and conditions, every server_name regex); None
    when Python cannot read it."""
    try:
        return re.compile(to_python(pattern), re.IGNORECASE if caseless else 0)
    except re.error:
        return None
