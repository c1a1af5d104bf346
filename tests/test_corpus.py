"""Every real-world file in ../shared/corpus: what nginx accepts parses and
round-trips byte for byte; what it rejects gives an error naming file and line.

The corpus is read in place (never copied into the project); without it
these tests are skipped, which only happens outside the project checkout.
"""
import os
import subprocess

import pytest

import lab
from certbot_nginx_webroot import parser
from conftest import CORPUS

# Syntax errors kept on purpose (see corpus/SOURCES.md, "Known-invalid files").
SYNTAX_INVALID = {
    "certbot-testdata/etc_nginx/broken.conf",
    "certbot-testdata/etc_nginx/ubuntu_nginx_1_4_6/default_vhost/nginx/naxsi-ui.conf.1.4.1",
    "crossplane/missing-semicolon/broken-above.conf",
    "crossplane/missing-semicolon/broken-below.conf",
    "crossplane/quote-behavior/nginx.conf",
    "crossplane/includes-globbed/servers/locations/not-included.conf",
    # "this file should never be included": junk without a ';', like not-included.conf
    "crossplane/includes-regular/conf.d/bar.conf",
    "crossplane/includes-regular/conf.d/foo.conf",
}
# A missing ';' is not a syntax error: nginx's tokenizer reads on into the
# next line's words, and nginx then rejects the directive's argument count
# ("invalid number of arguments in ... file:line").  We read them the same way.
MERGED_DIRECTIVES = {
    "certbot-roundtrip/guide-to-nginx-ssl-spdy-hsts/nginx.conf": ("ssl_ciphers", 63, 3),
    "gitlab/lib/support/nginx/registry-ssl": ("ssl_certificate", 30, 5),
}
# Valid syntax that nginx rejects for what the directives mean: nginx -t
# names the file and line (the plugin passes its message on).
SEMANTIC_INVALID = {
    "crossplane/spelling-mistake/nginx.conf": 'unknown directive "proxy_passs"',
    "crossplane/bad-args/nginx.conf": 'invalid number of arguments in "user"',
}


def corpus_files():
    if not os.path.isdir(CORPUS):
        return []
    found = []
    for directory, _, files in os.walk(CORPUS):
        for name in files:
            rel = os.path.relpath(os.path.join(directory, name), CORPUS)
            if rel != "SOURCES.md":
                found.append(rel)
    return sorted(found)


FILES = corpus_files()
needs_corpus = pytest.mark.skipif(not FILES, reason="../shared/corpus is not beside the project")


def _find(rel_suffix):
    return [f for f in FILES if f.endswith(rel_suffix)]


@needs_corpus
def test_corpus_is_all_there():
    assert len(FILES) > 350
    missing = [f for f in SYNTAX_INVALID | set(SEMANTIC_INVALID) | set(MERGED_DIRECTIVES)
               if f not in FILES]
    assert not missing


@needs_corpus
@pytest.mark.parametrize("rel", [f for f in FILES if f not in SYNTAX_INVALID])
def test_accepted_files_round_trip(rel):
    path = os.path.join(CORPUS, rel)
    with open(path, "rb") as f:
        data = f.read()
    conf = parser.parse(parser.decode(data), path)
    assert parser.encode(parser.dump(conf)) == data


@needs_corpus
@pytest.mark.parametrize("rel", sorted(SYNTAX_INVALID))
def test_rejected_files_name_file_and_line(rel):
    path = os.path.join(CORPUS, rel)
    with pytest.raises(parser.ParseError) as err:
        parser.parse_file(path)
    with open(path, "rb") as f:
        lines = f.read().count(b"\n") + 1
    assert 1 <= err.value.line <= lines
    assert str(err.value).endswith(f" in {path}:{err.value.line}")


@needs_corpus
def test_comments_between_arguments_are_read_as_nginx_reads_them():
    path = os.path.join(CORPUS, "crossplane/comments-between-args/nginx.conf")
    log_format = parser.parse_file(path).children[0].children[0]
    # nginx resolves only \\" \\' \\\\ \\t \\r \\n; "\\#" and "\\ " stay as written
    assert log_format.args == ["\\#arg\\ 1", "#arg 2"]
    assert "#comment 3" in log_format.raw and "#comment 5" in log_format.raw


@needs_corpus
@pytest.mark.parametrize("rel", sorted(MERGED_DIRECTIVES))
def test_missing_semicolon_reads_on_like_nginx(rel):
    name, line, nargs = MERGED_DIRECTIVES[rel]
    conf = parser.parse_file(os.path.join(CORPUS, rel))
    node = next(n for n in parser.walk(conf.children) if n.line == line)
    assert node.name == name and len(node.args) == nargs


@needs_corpus
@pytest.mark.skipif(not os.path.exists(lab.nginx_binary()) and not os.environ.get("CI"),
                    reason="nginx is not installed")
@pytest.mark.parametrize("rel", sorted(SEMANTIC_INVALID))
def test_semantic_errors_come_from_nginx_with_file_and_line(rel, tmp_path):
    path = os.path.join(CORPUS, rel)
    parser.parse_file(path)  # the syntax is fine
    proc = subprocess.run([lab.nginx_binary(), "-t", "-p", str(tmp_path), "-e", "stderr", "-c", path,
                           "-g", f"pid {tmp_path}/nginx.pid;"],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert SEMANTIC_INVALID[rel] in proc.stderr
    assert f"{path}:" in proc.stderr
