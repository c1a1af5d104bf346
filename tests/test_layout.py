"""The layout rules of the README's "Layout" section, checked on the code:
which room may import which, only the edge imports certbot, and no class or
function grows past the sizes a reader can hold."""
import ast
import os

import pytest

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "certbot_nginx_webroot")

# Rooms, and the rooms each may import from (itself included).
ROOMS = {
    "base": ["problems", "registry", "nginx_regex", "build_info", "probes", "certificates", "parser",
             "lookup"],
    "model": ["config"],
    "rules": ["effective", "rewrites"],
    "edits": ["edit", "sites", "challenge_location", "own_server", "placement", "https_server",
              "certificate_lines", "redirects", "tls"],
    "controllers": ["controllers"],
    "stores": ["stores"],
    "flows": ["flows"],
    "edge": ["plugin"],
}
MAY_IMPORT = {
    "base": {"base"},
    "model": {"base", "model"},
    "rules": {"base", "model", "rules"},
    "edits": {"base", "model", "rules", "edits"},
    "controllers": {"controllers", "base"},
    "stores": {"stores", "base"},
    "flows": {"base", "model", "rules", "edits", "controllers", "stores", "flows"},
    "edge": set(ROOMS),
}
MAX_CLASS_LINES = 330
MAX_FUNCTION_LINES = 65


def modules():
    for directory, _, files in os.walk(PACKAGE):
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                dotted = os.path.relpath(path, PACKAGE)[:-3].replace(os.sep, ".")
                yield dotted.replace(".__init__", "").replace("__init__", ""), path


def room_of(dotted):
    top = dotted.split(".")[0]
    return next((room for room, members in ROOMS.items() if top in members), None)


def imports_of(path):
    """(package modules, other top-level packages) that path imports,
    including the edge's lazily imported modules."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    ours, theirs = set(), set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "_lazy_module":
            names = [node.args[0].value]
        for name in names:
            if name.startswith("certbot_nginx_webroot."):
                part = name[len("certbot_nginx_webroot."):]
                if room_of(part):
                    ours.add(part)
            elif name != "certbot_nginx_webroot":
                theirs.add(name.split(".")[0])
    return ours, theirs


def test_every_module_has_a_room():
    homeless = [dotted for dotted, _ in modules() if dotted and room_of(dotted) is None]
    assert homeless == []


@pytest.mark.parametrize("dotted, path", [m for m in modules() if m[0]])
def test_each_room_imports_only_what_the_layout_allows(dotted, path):
    room = room_of(dotted)
    ours, theirs = imports_of(path)
    wrong = sorted(m for m in ours if room_of(m) not in MAY_IMPORT[room])
    assert wrong == [], f"{dotted} ({room}) may not import {wrong}"
    if room != "edge":
        assert "certbot" not in theirs, f"{dotted} imports certbot: only plugin.py may"


@pytest.mark.parametrize("dotted, path", [m for m in modules() if m[0]])
def test_no_class_or_function_is_too_long_to_read(dotted, path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    long = [(node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(tree)
            if (isinstance(node, ast.ClassDef) and
                node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES) or
            (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and
             node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES)]
    assert long == []
