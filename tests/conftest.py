import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tests/lab.py
DATA = os.path.join(HERE, "data")
CORPUS = os.path.join(os.path.dirname(HERE), "..", "shared", "corpus")


@pytest.fixture(scope="module")
def acme(tmp_path_factory):
    """A real ACME CA (pebble) for the end-to-end tests of one module."""
    import lab
    ca = lab.AcmeCA(str(tmp_path_factory.mktemp("acme"))).start()
    yield ca
    ca.stop()


@pytest.fixture
def nginx():
    """A real nginx from a temporary prefix, stopped and removed after the test."""
    import lab
    server = lab.NginxLab()
    yield server
    server.stop()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "e2e: real certbot, pebble and nginx on loopback "
                   "(deselect with -m 'not e2e' where pebble is not installed)")


def pytest_report_header(config):
    """Which certbot the suite runs against: CI runs it once per version."""
    from importlib import metadata
    versions = []
    for dist in ("certbot", "acme", "josepy", "cryptography", "pyOpenSSL"):
        try:
            versions.append(f"{dist} {metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{dist} missing")
    return "against " + ", ".join(versions)
