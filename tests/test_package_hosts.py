"""No package host is named in the project: scripts that fetch packages
(.ci/newer-nginx) take the Debian archive from the machine's own apt sources
(tools/debian-mirror), as ../shared/tools/fresh-debian12 does."""
import glob
import os
import re
import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_MIRROR = os.path.join(ROOT, "tools", "debian-mirror")
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s\"'<>)\]]+", re.I)
# Hosts of the distributions' package archives and their redirectors; their
# documentation site (debian/copyright's Format: URL) is not one.
ARCHIVE_DOMAINS = ("debian.org", "debian.net", "ubuntu.com", "pythonhosted.org", "pypi.org")
DOCUMENTATION_HOSTS = {"www.debian.org"}


def apt_source_hosts(etc_apt="/etc/apt"):
    """Every host name this machine's apt sources name (enabled or not); not
    addresses or localhost (a local proxy such as apt-cacher-ng), which the
    tests name for their own servers."""
    hosts = set()
    for path in ([os.path.join(etc_apt, "sources.list")]
                 + glob.glob(os.path.join(etc_apt, "sources.list.d", "*"))):
        try:
            with open(path, errors="replace") as f:
                hosts |= {urlsplit(u).hostname for u in URL.findall(f.read())}
        except OSError:
            pass
    return {h for h in hosts - {None, "localhost"} if not re.fullmatch(r"[0-9.]+|[0-9a-f:]+", h)}


def is_package_host(host, machine_hosts):
    host = host.lower()
    if host in DOCUMENTATION_HOSTS:
        return False
    return host in machine_hosts or any(host == d or host.endswith("." + d)
                                        for d in ARCHIVE_DOMAINS)


def tracked_files():
    if not os.path.exists(os.path.join(ROOT, ".git")) or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    out = subprocess.run(["git", "-C", ROOT, "ls-files", "-z"], capture_output=True,
                         check=True).stdout.decode()
    return [p for p in out.split("\0") if p and not p.startswith("tests/data/")]


def test_no_file_names_a_package_host():
    machine_hosts = apt_source_hosts()
    named = []
    for rel in tracked_files():
        path = os.path.join(ROOT, rel)
        if not os.path.isfile(path):
            continue
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        for url in URL.findall(text):
            try:
                host = urlsplit(url).hostname
            except ValueError:
                continue
            if host and is_package_host(host, machine_hosts):
                named.append(f"{rel}: {url}")
    assert named == []


def test_is_package_host():
    assert is_package_host("deb.debian.org", set())
    assert is_package_host("ftp.de.debian.org", set())
    assert is_package_host("archive.ubuntu.com", set())
    assert is_package_host("mirror.internal", {"mirror.internal"})
    assert not is_package_host("www.debian.org", set())
    assert not is_package_host("certbot.eff.org", set())


needs_mirror_tool = pytest.mark.skipif(
    not os.path.exists(DEBIAN_MIRROR) or shutil.which("bash") is None,
    reason="tools/debian-mirror is not beside the tests")


def debian_mirror(etc_apt):
    return subprocess.run(["bash", DEBIAN_MIRROR, str(etc_apt)], capture_output=True, text=True)


def sources(tmp_path, files):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (etc / name).write_text(text)
    return etc


@needs_mirror_tool
@pytest.mark.parametrize("files, mirror", [
    # deb822: a stanza's second URI, trailing slash dropped; deb-src and
    # disabled stanzas skipped.
    ({"sources.list.d/a.sources":
      "Types: deb-src\nURIs: http://src.example/debian\n\n"
      "Types: deb\nEnabled: no\nURIs: http://off.example/debian\n\n"
      "# a comment\nTypes: deb deb-src\nURIs: http://u.example/ubuntu http://m.example/debian/\n"
      "Suites: trixie\nComponents: main\n"}, "http://m.example/debian"),
    # One-line form with options; commented and deb-src lines skipped;
    # sources.list before sources.list.d; the security archive is not it.
    ({"sources.list": "# deb http://c.example/debian x main\n"
                      "deb-src http://s.example/debian x main\n"
                      "deb http://m.example/debian-security x-security main\n"
                      "deb [arch=amd64 signed-by=/k.gpg] https://m.example/debian x main\n",
      "sources.list.d/b.list": "deb http://later.example/debian x main\n"},
     "https://m.example/debian"),
])
def test_debian_mirror_reads_apt_sources(tmp_path, files, mirror):
    result = debian_mirror(sources(tmp_path, files))
    assert (result.returncode, result.stdout) == (0, mirror + "\n")


@needs_mirror_tool
def test_debian_mirror_without_a_debian_archive_says_so(tmp_path):
    result = debian_mirror(sources(tmp_path, {
        "sources.list.d/n.sources": "Types: deb\nURIs: https://n.example/node_20.x\n"}))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "no Debian archive" in result.stderr
