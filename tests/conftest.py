import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # tests/lab.py
DATA = os.path.join(HERE, "data")
CORPUS = os.path.join(os.path.dirname(HERE), "..", "shared", "corpus")


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
