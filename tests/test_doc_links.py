"""Every relative link in README.md and docs/*.md names a file that exists
and, with a #fragment, a heading of that file (GitHub's anchors)."""
import collections
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS = os.path.join(ROOT, "docs")

# The Debian build runs the tests from a build directory without the docs.
pytestmark = pytest.mark.skipif(not (os.path.exists(README) and os.path.isdir(DOCS)),
                                reason="README.md and docs/ are not beside tests/")


def without_code(text):
    """Markdown outside fenced blocks and inline code (links there are text)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def anchors(path):
    """GitHub's anchor for each heading: lowercased, punctuation dropped
    (hyphens kept), spaces to hyphens; a repeated one gets -1, -2, ..."""
    seen = collections.Counter()
    found = set()
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for heading in re.findall(r"^#{1,6} +(.*?) *$", re.sub(r"^```.*?^```", "", text,
                                                            flags=re.S | re.M), flags=re.M):
        heading = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def relative_links(path):
    with open(path, encoding="utf-8") as f:
        targets = re.findall(r"\]\(([^)\s]+)\)", without_code(f.read()))
    return [t for t in targets if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def pages():
    if not os.path.isdir(DOCS):
        return []  # skipped (pytestmark): nothing to list at collection
    return [README] + sorted(os.path.join(DOCS, n) for n in os.listdir(DOCS)
                             if n.endswith(".md"))


def test_the_anchor_rule_is_githubs():
    assert anchors(os.path.join(DOCS, "renewals.md")) >= {
        "many-certificates-one-reload-per-certbot-renew-run",
        "moving-an-existing-certificate-to-this-plugin"}
    assert "tls-settings-hsts-and-upgrade-insecure-requests" in anchors(
        os.path.join(DOCS, "behaviour.md"))


PAGES = pages()


# ids as a list: pytest asks an id function for an id even of an empty set
# (the Debian build directory has no docs), which os.path.relpath refuses.
@pytest.mark.parametrize("page", PAGES, ids=[os.path.relpath(p, ROOT) for p in PAGES])
def test_every_relative_link_resolves(page):
    links = relative_links(page)
    broken = []
    for link in links:
        name, _, fragment = link.partition("#")
        target = os.path.normpath(os.path.join(os.path.dirname(page), name)) if name else page
        if not os.path.exists(target):
            broken.append(f"{link}: no file {os.path.relpath(target, ROOT)}")
        elif fragment and fragment not in anchors(target):
            broken.append(f"{link}: no heading #{fragment} in {os.path.relpath(target, ROOT)}")
    assert not broken, broken


def test_the_readme_links_every_docs_page():
    with open(README, encoding="utf-8") as f:
        linked = {link.partition("#")[0] for link in relative_links(README)}
    assert {f"docs/{n}" for n in os.listdir(DOCS) if n.endswith(".md")} <= linked
