"""The plugin as certbot finds it: the entry point, and `certbot plugins`
run for real (no network, no nginx needed)."""
import os
import subprocess
from importlib import metadata

import pytest

import lab
from certbot_nginx_webroot import plugin


def test_entry_point_is_declared():
    everything = metadata.entry_points()
    found = (everything.select(group="certbot.plugins") if hasattr(everything, "select")
             else everything.get("certbot.plugins", []))  # Python 3.9
    ours = [ep for ep in found if ep.name == "nginx-webroot"]
    # A checkout's egg-info can list the same distribution twice; one target.
    assert {ep.value for ep in ours} == {"certbot_nginx_webroot.plugin:NginxWebroot"}


@pytest.fixture
def certbot_dirs(tmp_path):
    server_root = tmp_path / "nginx"
    server_root.mkdir()
    (server_root / "nginx.conf").write_text("events {}\nhttp {}\n")
    ctl = tmp_path / "nginx-binary"
    ctl.write_text("#!/bin/sh\nexit 0\n")
    ctl.chmod(0o755)
    return ["--config-dir", str(tmp_path / "config"), "--work-dir", str(tmp_path / "work"),
            "--logs-dir", str(tmp_path / "logs"),
            "--nginx-webroot-server-root", str(server_root), "--nginx-webroot-ctl", str(ctl)]


def plugins_listing(args):
    proc = subprocess.run(lab.CERTBOT_COMMAND + ["plugins", "--init", "--prepare"] + args,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    entries = proc.stdout.split("\n* ")
    ours = [e for e in entries if e.startswith("nginx-webroot\n")]
    assert len(ours) == 1, proc.stdout
    return ours[0].splitlines()


def test_certbot_plugins_lists_it_with_a_one_line_description(certbot_dirs):
    lines = plugins_listing(certbot_dirs)
    assert lines[1] == "Description: " + plugin.NginxWebroot.description  # one line
    interfaces = lines[2].split(": ", 1)[1].split(", ")
    assert {"Authenticator", "Installer"} <= set(interfaces)
    assert "Prep: True" in lines

