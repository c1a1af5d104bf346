"""Challenge files: written without following symlinks, removed exactly as
created."""
import os

import pytest
from acme import challenges

from certbot_nginx_webroot.stores import ChallengeStoreError
from certbot_nginx_webroot.stores import local as challenge_files
from certbot_nginx_webroot.stores.local import LocalDirectory

PARTS = challenges.HTTP01.URI_ROOT_PATH.split("/")


def tree(root):
    """Every path under root (symlinks not followed), relative."""
    found = set()
    for d, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(d, name), root))
    return found


def test_write_then_remove_leaves_the_webroot_as_it_was(tmp_path):
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    files = LocalDirectory(str(webroot))
    files.put("tok1", b"one")
    files.put("tok2", b"two")
    path = webroot.joinpath(*PARTS, "tok1")
    assert path.read_bytes() == b"one" and files.read("tok2") == b"two"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert oct(path.parent.stat().st_mode & 0o777) == "0o755"
    files.remove_all()
    assert tree(webroot) == set()


def test_a_missing_webroot_is_made_and_removed(tmp_path):
    files = LocalDirectory(str(tmp_path / "a" / "webroot"))
    files.put("tok", b"x")
    assert (tmp_path / "a" / "webroot").joinpath(*PARTS, "tok").read_bytes() == b"x"
    files.remove_all()
    assert tree(tmp_path) == set()


def test_only_what_was_created_is_removed(tmp_path):
    webroot = tmp_path / "webroot"
    challenge_dir = webroot.joinpath(*PARTS)
    challenge_dir.mkdir(parents=True)  # there before, e.g. the recipe's
    (challenge_dir / "other-run").write_text("theirs")
    files = LocalDirectory(str(webroot))
    files.put("tok", b"x")
    files.remove_all()
    assert tree(webroot) == {PARTS[0], os.path.join(*PARTS), os.path.join(*PARTS, "other-run")}


def test_a_directory_made_meanwhile_is_used_not_an_error(tmp_path, monkeypatch):
    # Another run makes the challenge directory between our check and mkdir.
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    real_mkdir = os.mkdir

    def racing_mkdir(path, mode=0o777, *, dir_fd=None):
        real_mkdir(path, mode, dir_fd=dir_fd)  # the other run's
        real_mkdir(path, mode, dir_fd=dir_fd)  # ours: EEXIST
    monkeypatch.setattr(os, "mkdir", racing_mkdir)
    files = LocalDirectory(str(webroot))
    files.put("tok", b"x")
    monkeypatch.undo()
    files.remove_all()  # the directories are the other run's: they stay
    assert tree(webroot) == {PARTS[0], os.path.join(*PARTS)}


@pytest.mark.parametrize("depth", range(1, len(PARTS) + 1))
def test_a_symlinked_directory_under_the_webroot_is_not_written_through(tmp_path, depth):
    webroot = tmp_path / "webroot"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    webroot.joinpath(*PARTS[:depth - 1]).mkdir(parents=True)
    webroot.joinpath(*PARTS[:depth]).symlink_to(elsewhere)
    files = LocalDirectory(str(webroot))
    with pytest.raises(ChallengeStoreError) as err:
        files.put("tok", b"x")
    assert "is a symlink" in str(err.value)
    assert str(webroot.joinpath(*PARTS[:depth])) in str(err.value)
    assert tree(elsewhere) == set()  # nothing was created through the link
    files.remove_all()
    assert webroot.joinpath(*PARTS[:depth]).is_symlink()


def test_a_symlink_in_place_of_the_file_is_replaced_not_followed(tmp_path):
    webroot = tmp_path / "webroot"
    challenge_dir = webroot.joinpath(*PARTS)
    challenge_dir.mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_text("keep me")
    (challenge_dir / "tok").symlink_to(target)
    files = LocalDirectory(str(webroot))
    files.put("tok", b"x")
    assert target.read_text() == "keep me"
    assert not (challenge_dir / "tok").is_symlink()
    assert (challenge_dir / "tok").read_bytes() == b"x"


def test_a_webroot_that_is_a_file_is_a_clear_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ChallengeStoreError) as err:
        LocalDirectory(str(tmp_path / "file" / "webroot")).put("tok", b"x")
    assert f"{tmp_path / 'file'} is not a directory" in str(err.value)


@pytest.mark.skipif(os.geteuid() != 0, reason="changing owners needs root")
def test_created_directories_get_the_webroots_owner(tmp_path):
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    os.chown(webroot, 65534, 65534)
    files = LocalDirectory(str(webroot))
    files.put("tok", b"x")
    for depth in range(1, len(PARTS) + 1):
        st = webroot.joinpath(*PARTS[:depth]).stat()
        assert (st.st_uid, st.st_gid) == (65534, 65534)


def test_an_adopted_directory_below_an_admins_path(tmp_path):
    # An alias location serves tmp/acme itself: the files go straight in, and
    # tmp/acme, made here, is removed; a root location serves
    # <root>/.well-known/acme-challenge, made and checked as for our own.
    alias = LocalDirectory(str(tmp_path), "acme")
    alias.put("tok", b"v")
    assert (tmp_path / "acme" / "tok").read_bytes() == b"v"
    root = LocalDirectory(str(tmp_path / "site"))
    root.put("tok", b"w")
    alias.remove_all()
    root.remove_all()
    assert not (tmp_path / "acme").exists() and not (tmp_path / "site").exists()


def test_an_alias_directory_that_is_a_symlink_is_not_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "acme").symlink_to(elsewhere)
    with pytest.raises(ChallengeStoreError) as err:
        LocalDirectory(str(tmp_path), "acme").put("tok", b"v")
    assert f"{tmp_path / 'acme'} is a symlink; not writing through it" in str(err.value)
    assert list(elsewhere.iterdir()) == []
