"""The ssh challenge store's scripts, run by this machine's sh (the argv a
node's shell gets), on a temporary webroot."""
import os
import stat
import subprocess

import pytest
from acme import challenges

from certbot_nginx_webroot.controllers.openssh import SshError
from certbot_nginx_webroot.stores import ChallengeStoreError
from certbot_nginx_webroot.stores.ssh import SshDirectory

ROOT = challenges.HTTP01.URI_ROOT_PATH


class LocalShell:
    def __init__(self):
        self.commands = []

    def run(self, destination, command, stdin=None):
        self.commands.append((destination, command))
        return subprocess.run(command, input=stdin or b"", capture_output=True)


def test_put_makes_the_directories_and_a_0644_file_and_remove_all_undoes_it(tmp_path):
    shell = LocalShell()
    store = SshDirectory(shell, "node1", str(tmp_path))
    store.put("tok-en_1", b"validation-1")
    store.put("token2", b"validation-2")
    path = tmp_path / ROOT / "tok-en_1"
    assert path.read_bytes() == b"validation-1" and store.read("token2") == b"validation-2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / ROOT).stat().st_mode) == 0o755
    assert {dest for dest, _ in shell.commands} == {"node1"}
    store.remove_all()
    assert os.listdir(tmp_path) == []  # the directories it made, gone too


def test_remove_all_keeps_directories_it_did_not_make_and_files_of_others(tmp_path):
    (tmp_path / ROOT).mkdir(parents=True)
    (tmp_path / ROOT / "someone-elses").write_bytes(b"x")
    store = SshDirectory(LocalShell(), "node1", str(tmp_path))
    store.put("ours", b"v")
    store.remove_all()
    assert os.listdir(tmp_path / ROOT) == ["someone-elses"]


def test_nothing_is_written_through_a_symlinked_directory(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    webroot = tmp_path / "webroot"
    (webroot / ROOT.split("/")[0]).mkdir(parents=True)
    (webroot / ROOT).symlink_to(elsewhere)
    store = SshDirectory(LocalShell(), "node1", str(webroot))
    with pytest.raises(ChallengeStoreError) as err:
        store.put("token", b"v")
    assert "symbolic link" in str(err.value) and "node1" in str(err.value)
    assert os.listdir(elsewhere) == []


def test_an_existing_file_or_symlink_at_the_token_is_not_overwritten(tmp_path):
    directory = tmp_path / ROOT
    directory.mkdir(parents=True)
    target = tmp_path / "target"
    target.write_bytes(b"keep")
    (directory / "linked").symlink_to(target)
    (directory / "there").write_bytes(b"keep")
    store = SshDirectory(LocalShell(), "node1", str(tmp_path))
    for token in ("linked", "there"):
        with pytest.raises(ChallengeStoreError):
            store.put(token, b"new")
    assert target.read_bytes() == b"keep" and (directory / "there").read_bytes() == b"keep"
    store.remove_all()  # nothing of ours to remove: both stay
    assert sorted(os.listdir(directory)) == ["linked", "there"]


@pytest.mark.parametrize("token", ["../../etc/passwd", "a/b", "", "tok en", "-rf"])
def test_only_acme_tokens_name_files(tmp_path, token):
    shell = LocalShell()
    if token == "-rf":  # base64url allows a leading "-": the scripts pass "--"
        SshDirectory(shell, "node1", str(tmp_path)).put(token, b"v")
        assert (tmp_path / ROOT / "-rf").read_bytes() == b"v"
        return
    with pytest.raises(ChallengeStoreError):
        SshDirectory(shell, "node1", str(tmp_path)).put(token, b"v")
    assert shell.commands == []


def test_a_node_ssh_cannot_reach_is_a_store_error_naming_it(tmp_path):
    class Refused:
        def run(self, destination, command, stdin=None):
            raise SshError(f"ssh {destination} failed: Host key verification failed.")
    store = SshDirectory(Refused(), "node2", "/var/www/acme")
    with pytest.raises(ChallengeStoreError) as err:
        store.put("token", b"v")
    assert str(err.value) == (f"cannot write the challenge file /var/www/acme/{ROOT}/token on "
                              "node2: ssh node2 failed: Host key verification failed.")
    store.remove_all()  # nothing put, nothing to do, no error
