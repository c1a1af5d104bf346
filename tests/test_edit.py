"""Edits change only the lines they must; saving is atomic and keeps modes,
owners and symlinks; includes resolve as nginx resolves them."""
import os
import stat

import pytest

from certbot_nginx_webroot import edit, parser
from certbot_nginx_webroot.config import Config, ConfigError, write_atomic

LOC = "location /x {\n    return 204;\n}"


def _server(text):
    conf = parser.parse(text, "t.conf")
    return conf, conf.children[0]


def test_insert_indents_like_neighbours_and_keeps_the_rest():
    text = "server {\n    listen 80;\n\n    # keep me\n    location / { }\n}\n"
    conf, server = _server(text)
    edit.insert(server, 1, LOC, conf.newline, "t.conf")
    assert parser.dump(conf) == ("server {\n    listen 80;\n    location /x {\n"
                                 "        return 204;\n    }\n\n    # keep me\n"
                                 "    location / { }\n}\n")


def test_insert_with_tabs_and_crlf():
    conf, server = _server("server {\r\n\tlisten 80;\r\n}\r\n")
    edit.insert(server, 1, LOC, conf.newline, "t.conf")
    assert parser.dump(conf) == ("server {\r\n\tlisten 80;\r\n\tlocation /x {\r\n"
                                 "\t\treturn 204;\r\n\t}\r\n}\r\n")


def test_nested_lines_use_the_files_own_indent_unit():
    conf = parser.parse("http {\n  server {\n    listen 80;\n  }\n}\n", "t.conf")
    server = conf.children[0].children[0]
    edit.insert(server, 1, LOC, conf.newline, "t.conf")
    assert parser.dump(conf) == ("http {\n  server {\n    listen 80;\n    location /x {\n"
                                 "      return 204;\n    }\n  }\n}\n")


def test_insert_after_a_trailing_comment_keeps_it_on_its_line():
    conf, server = _server("server {\n    listen 80; # main port\n}\n")
    edit.insert(server, 1, "server_name a;", conf.newline, "t.conf")
    assert parser.dump(conf) == "server {\n    listen 80; # main port\n    server_name a;\n}\n"


def test_insert_into_an_empty_nested_block():
    conf = parser.parse("http {\n    server {\n    }\n}\n", "t.conf")
    server = conf.children[0].children[0]
    edit.insert(server, 0, "listen 80;", conf.newline, "t.conf")
    assert parser.dump(conf) == "http {\n    server {\n        listen 80;\n    }\n}\n"


def test_insert_into_a_one_line_block_stays_on_the_line():
    conf, server = _server("server { listen 80; }\n")
    edit.insert(server, 1, "server_name a;", conf.newline, "t.conf")
    assert parser.dump(conf) == "server { listen 80; server_name a; }\n"


def test_a_marked_snippet_in_a_one_line_block_does_not_swallow_the_rest():
    """The marker ending the snippet's last line would comment out what
    followed on that line (found inserting the challenge location into
    `server { listen 80; location / { return 404; } }`)."""
    conf, server = _server("server { listen 80; location / { return 404; } }\n")
    edit.insert(server, 1, "location /x {  " + edit.MARK + "\n    return 204;  " + edit.MARK
                + "\n}  " + edit.MARK, conf.newline, "t.conf")
    again = parser.parse(parser.dump(conf), "t.conf").children[0]
    assert [(n.name, n.args) for n in again.children] == [
        ("listen", ["80"]), ("location", ["/x"]), ("location", ["/"])]
    assert again.children[2].children[0].name == "return"
    assert parser.dump(conf).startswith("server { listen 80; location /x {")


def test_replace_takes_the_place_and_indentation():
    conf, server = _server("server {\n    listen 80;\n    return 301 https://$host$request_uri;\n}\n")
    edit.replace(server, 1, "location / {\n    return 301 https://$host$request_uri;\n}",
                 conf.newline, "t.conf")
    assert parser.dump(conf) == ("server {\n    listen 80;\n    location / {\n"
                                 "        return 301 https://$host$request_uri;\n    }\n}\n")


def test_set_args_keeps_alignment_and_marks_the_line():
    conf, server = _server("server {\n    ssl_certificate     /old.pem;\n    listen 443 ssl;\n}\n")
    edit.set_args(server, 0, ["/new path.pem"])
    assert parser.dump(conf) == ('server {\n    ssl_certificate     "/new path.pem";  '
                                 + edit.MARK + "\n    listen 443 ssl;\n}\n")
    assert server.children[0].args == ["/new path.pem"]


def test_set_args_keeps_a_users_comment():
    conf, server = _server("server {\n    ssl_certificate /old.pem; # mine\n}\n")
    edit.set_args(server, 0, ["/new.pem"])
    assert parser.dump(conf) == "server {\n    ssl_certificate /new.pem; # mine\n}\n"


def test_mark_block_marks_each_line_and_never_comments_out_code():
    conf = parser.parse("server {\n    listen 80;\n    location / { return 204; }\n"
                        "    location /x {\n        return 200; # mine\n    }\n}\n", "t")
    edit.mark_block(conf, 0)
    out = parser.dump(conf)
    assert out == ("server {  M\n    listen 80;  M\n    location / { return 204; }  M\n"
                   "    location /x {  M\n        return 200; # mine\n    }  M\n}  M\n"
                   ).replace("M", edit.MARK)
    assert [n.name for n in parser.walk(parser.parse(out).children)] == \
        ["server", "listen", "location", "return", "location", "return"]


def test_remove_drops_the_line_with_its_comment():
    conf, server = _server("server {\n    listen 80;\n    listen 81; # old\n    # keep\n}\n")
    edit.remove(server, 1)
    assert parser.dump(conf) == "server {\n    listen 80;\n    # keep\n}\n"


def test_copy_after_duplicates_the_block_after_a_blank_line():
    conf = parser.parse("http {\n    server {\n        listen 80;\n    }\n}\n", "t.conf")
    http = conf.children[0]
    copy = edit.copy_after(http, 0, conf.newline)
    assert copy is http.children[1] and copy.file == "t.conf"
    assert parser.dump(conf) == ("http {\n    server {\n        listen 80;\n    }\n\n"
                                 "    server {\n        listen 80;\n    }\n}\n")


@pytest.mark.parametrize("after", [" ", " # end of site", "\t", " \n", " # end\n", "\t\n"])
def test_copy_after_leaves_the_closing_line_as_it_was(after):
    conf = parser.parse("server {\n    listen 80;\n}%s" % after, "t.conf")
    edit.copy_after(conf, 0, conf.newline)
    assert parser.dump(conf) == ("server {\n    listen 80;\n}%s\n\n"
                                 "server {\n    listen 80;\n}\n" % after.rstrip("\n"))


def test_nest_reindents_user_text():
    assert edit.nest("if ($a) {\n        return 301 x;\n    }", 1) == \
        "    if ($a) {\n        return 301 x;\n    }"


# -- whole configurations ------------------------------------------------

def _tree(tmp_path, files):
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path / "nginx.conf")


def test_includes_relative_to_main_dir_glob_sorted_and_symlinked(tmp_path):
    main = _tree(tmp_path, {
        "nginx.conf": "http {\n    include conf.d/*.conf;\n    include sites-enabled/*;\n}\n",
        "conf.d/b.conf": "server { server_name b; }\n",
        "conf.d/a.conf": "server { server_name a; include snippets/x.conf; }\n",
        "snippets/x.conf": "listen 8080;\n",
        "sites-available/c": "server { server_name c; }\n",
    })
    os.makedirs(tmp_path / "sites-enabled")
    os.symlink(tmp_path / "sites-available/c", tmp_path / "sites-enabled/c")
    config = Config.load(main)
    servers = config.server_blocks()
    assert [s.children[0].args for s in servers] == [["a"], ["b"], ["c"]]
    assert servers[2].file == str(tmp_path / "sites-enabled/c")
    assert [d.args for d in config.directives(servers[0], "listen")] == [["8080"]]


def test_stream_and_upstream_servers_are_not_http_servers(tmp_path):
    main = _tree(tmp_path, {"nginx.conf": "stream { server { listen 53; } }\n"
                            "http { upstream u { server 127.0.0.1; } server { listen 80; } }\n"})
    assert len(Config.load(main).server_blocks()) == 1


def test_missing_include_names_file_and_line(tmp_path):
    main = _tree(tmp_path, {"nginx.conf": "http {\n    include missing.conf;\n}\n"})
    with pytest.raises(ConfigError) as err:
        Config.load(main)
    assert f"{main}:2" in str(err.value)


def test_parse_error_in_an_included_file_names_it(tmp_path):
    main = _tree(tmp_path, {"nginx.conf": "http { include bad.conf; }\n",
                            "bad.conf": "server {\n    listen 80\n"})
    with pytest.raises(parser.ParseError) as err:
        Config.load(main)
    assert err.value.path.endswith("bad.conf")


def test_save_writes_only_changed_files_and_keeps_mode_and_symlink(tmp_path):
    main = _tree(tmp_path, {"nginx.conf": "http { include sites-enabled/*; }\n",
                            "sites-available/site": "server {\n    listen 80;\n}\n"})
    os.makedirs(tmp_path / "sites-enabled")
    link = tmp_path / "sites-enabled/site"
    os.symlink("../sites-available/site", link)
    os.chmod(tmp_path / "sites-available/site", 0o640)
    before_main = os.stat(main)
    config = Config.load(main)
    server = config.server_blocks()[0]
    edit.insert(server, 1, "server_name a;", "\n", server.file)
    config.mark_changed(server)
    assert config.save() == [str(link)]
    assert os.path.islink(link)
    target = tmp_path / "sites-available/site"
    assert target.read_text() == "server {\n    listen 80;\n    server_name a;\n}\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert os.stat(main).st_mtime_ns == before_main.st_mtime_ns
    assert not [f for f in os.listdir(tmp_path / "sites-available") if f.startswith(".")]


def test_write_atomic_new_file_is_0644(tmp_path):
    path = str(tmp_path / "new.conf")
    old = os.umask(0o077)
    try:
        write_atomic(path, b"x;\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_write_atomic_failure_leaves_the_file_alone(tmp_path, monkeypatch):
    path = tmp_path / "keep.conf"
    path.write_bytes(b"original;\n")

    def boom(*a):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        write_atomic(str(path), b"new;\n")
    assert path.read_bytes() == b"original;\n"
    assert os.listdir(tmp_path) == ["keep.conf"]


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_save_keeps_the_owner(tmp_path):
    path = tmp_path / "owned.conf"
    path.write_text("server {\n    listen 80;\n}\n")
    os.chown(path, 4321, 4322)
    write_atomic(str(path), b"server {\n    listen 81;\n}\n")
    st = os.stat(path)
    assert (st.st_uid, st.st_gid) == (4321, 4322)
    assert path.read_bytes() == b"server {\n    listen 81;\n}\n"


@pytest.mark.parametrize("new", [b"server {\n    listen 80;\n    server_name a;\n}\n",
                                 b"server{}\n"])  # longer, and shorter (no old tail)
def test_save_keeps_a_hard_link_one_file(tmp_path, new):
    """A site enabled with `ln` (no -s): both names stay one file, which
    gets the new content, mode and owner unchanged, no stray temp file."""
    main = _tree(tmp_path, {"nginx.conf": "http { include sites-enabled/*; }\n",
                            "sites-available/site": "server {\n    listen 80;\n}\n"})
    os.makedirs(tmp_path / "sites-enabled")
    available, enabled = tmp_path / "sites-available/site", tmp_path / "sites-enabled/site"
    os.link(available, enabled)
    os.chmod(available, 0o640)
    inode = os.stat(available).st_ino
    write_atomic(str(enabled), new)
    assert os.stat(enabled).st_ino == os.stat(available).st_ino == inode
    assert os.stat(enabled).st_nlink == 2
    assert available.read_bytes() == enabled.read_bytes() == new
    assert stat.S_IMODE(os.stat(enabled).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path / "sites-enabled")) == ["site"]


def test_config_save_into_a_hard_linked_file(tmp_path):
    main = _tree(tmp_path, {"nginx.conf": "http { include sites-enabled/*; }\n",
                            "sites-available/site": "server {\n    listen 80;\n}\n"})
    os.makedirs(tmp_path / "sites-enabled")
    os.link(tmp_path / "sites-available/site", tmp_path / "sites-enabled/site")
    config = Config.load(main)
    server = config.server_blocks()[0]
    edit.insert(server, 1, "server_name a;", "\n", server.file)
    config.mark_changed(server)
    config.save()
    assert (tmp_path / "sites-available/site").read_text() == \
        "server {\n    listen 80;\n    server_name a;\n}\n"
