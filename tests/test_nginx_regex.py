"""nginx's PCRE regexes read by Python's re: one translation for every
regex of the configuration."""
import pytest

from certbot_nginx_webroot import nginx_regex


@pytest.mark.parametrize("pcre,python", [
    (r"^(?<sub>[^.]+)\.example\.org$", r"^(?P<sub>[^.]+)\.example\.org$"),
    (r"^(?'sub'[^.]+)\.", r"^(?P<sub>[^.]+)\."),
    (r"(?P<sub>x)", r"(?P<sub>x)"),  # PCRE reads Python's spelling too
    (r"(?<=a)b(?<!c)", r"(?<=a)b(?<!c)"),  # look-behinds are not groups
    (r"(?<w>a)\k<w>\k'w'\k{w}\g{w}", r"(?P<w>a)(?P=w)(?P=w)(?P=w)(?P=w)"),
    (r"^/x\z", r"^/x\Z"),
    (r"^/x\Z", r"^/x(?=\n?\Z)"),
    (r"[(?<x>)\z]", r"[(?<x>)\z]"),  # inside a class nothing is special
    (r"[]\z]\z", r"[]\z]\Z"),  # a "]" first in a class is a member
    (r"\(?<x>", r"\(?<x>"),  # an escaped parenthesis opens no group
    (r"[[:alpha:]_][[:digit:]]", r"[a-zA-Z_][0-9]"),
])
def test_translation(pcre, python):
    assert nginx_regex.to_python(pcre) == python


def test_named_groups_capture_as_nginx_sets_variables():
    rx = nginx_regex.compile(r"^(?<sub>[^.]+)\.Example\.org$", caseless=True)
    assert rx.search("www.example.org").groupdict() == {"sub": "www"}


@pytest.mark.parametrize("caseless,matches", [(True, True), (False, False)])
def test_case(caseless, matches):
    assert bool(nginx_regex.compile(r"\.PHP$", caseless).search("/a.php")) is matches


def test_end_anchors_as_pcre_reads_them():
    assert nginx_regex.compile(r"^/a\Z", False).search("/a\n")
    assert not nginx_regex.compile(r"^/a\z", False).search("/a\n")


@pytest.mark.parametrize("pattern", [r"\Qa.b\E", "(unclosed", r"[[:^alpha:]]", r"\h"])
def test_what_python_cannot_read_is_none(pattern):
    assert nginx_regex.compile(pattern, False) is None
