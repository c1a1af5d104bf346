"""The configuration model: includes as nginx resolves them, loops, deep
nesting, and never overwriting a change made on disk."""
import pytest

from certbot_nginx_webroot import parser
from certbot_nginx_webroot.config import Config, ConfigError


def write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root / "nginx.conf")


def test_a_file_including_itself_is_a_loop_named_with_file_and_line(tmp_path):
    main = write(tmp_path, {"nginx.conf": "events {}\nhttp {\n    include a.conf;\n}\n",
                            "a.conf": "# a\ninclude a.conf;\n"})
    with pytest.raises(ConfigError) as err:
        Config.load(main)
    assert f"include loop: {tmp_path}/a.conf:2 -> {tmp_path}/a.conf" in str(err.value)


def test_a_to_b_to_a_is_a_loop(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n    include sites/*.conf;\n}\n",
                            "sites/a.conf": "include b.inc;\n",
                            "b.inc": "\n\ninclude sites/a.conf;\n"})
    with pytest.raises(ConfigError) as err:
        Config.load(main)
    assert (f"include loop: {tmp_path}/sites/a.conf:1 -> {tmp_path}/b.inc:3 -> "
            f"{tmp_path}/sites/a.conf") in str(err.value)


def test_including_the_main_file_is_a_loop(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n    include nginx.conf;\n}\n"})
    with pytest.raises(ConfigError) as err:
        Config.load(main)
    assert f"{tmp_path}/nginx.conf:2 -> {tmp_path}/nginx.conf" in str(err.value)


def test_one_file_included_twice_is_not_a_loop(tmp_path):
    main = write(tmp_path, {
        "nginx.conf": "http {\n    include a.conf;\n    include b.conf;\n}\n",
        "a.conf": "server { listen 80; server_name a; include ssl.inc; }\n",
        "b.conf": "server { listen 80; server_name b; include ssl.inc; }\n",
        "ssl.inc": "ssl_protocols TLSv1.3;\n"})
    config = Config.load(main)
    assert [s.names for s in config.servers()] == [("a",), ("b",)]


def test_deep_nesting_loads_walks_and_dumps(tmp_path):
    depth = 5000
    text = "http {\n" + "location /a {\n" * depth + "return 204;\n" + "}\n" * depth + "}\n"
    main = write(tmp_path, {"nginx.conf": text})
    config = Config.load(main)
    assert sum(1 for _ in parser.walk(config.files[main].children)) == depth + 2
    assert config.render(main) == text.encode()


def test_a_file_changed_on_disk_since_read_is_not_overwritten(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n    include a.conf;\n}\n",
                            "a.conf": "server { listen 80; }\n"})
    config = Config.load(main)
    config.files[str(tmp_path / "a.conf")].children[0].before = "# edited\n"
    config.mark_changed(str(tmp_path / "a.conf"))
    (tmp_path / "a.conf").write_text("server { listen 81; }\n")  # a hand edit meanwhile
    with pytest.raises(ConfigError) as err:
        config.save()
    assert f"{tmp_path}/a.conf changed on disk" in str(err.value)
    assert (tmp_path / "a.conf").read_text() == "server { listen 81; }\n"


def test_a_file_to_create_that_appeared_meanwhile_is_not_overwritten(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n}\n"})
    config = Config.load(main)
    new = str(tmp_path / "new.conf")
    config.add_file(new, parser.parse("server { listen 80; }\n", new))
    (tmp_path / "new.conf").write_text("# someone else's\n")
    with pytest.raises(ConfigError) as err:
        config.save()
    assert "new.conf was created on disk" in str(err.value)
    assert (tmp_path / "new.conf").read_text() == "# someone else's\n"


def test_saving_twice_needs_no_reread(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n}\n"})
    config = Config.load(main)
    config.files[main].tail += "# one\n"
    config.mark_changed(main)
    config.save()
    config.files[main].tail += "# two\n"
    config.mark_changed(main)
    config.save()
    assert (tmp_path / "nginx.conf").read_text() == "http {\n}\n# one\n# two\n"


def test_the_lookup_does_not_build_server_blocks(tmp_path):
    """A hosting config has 100 000 server blocks; a certbot run reads the
    names and listens of all and the insides of one or two."""
    main = tmp_path / "nginx.conf"
    main.write_text("http {\n    server {\n        listen 80; # listen 1;\n"
                    "        server_name a.example;\n        location / { types { listen 2; } }\n"
                    "    }\n    server {\n        listen 443 ssl;\n        listen 8443;\n"
                    "        server_name b.example c.example;\n        ssl on;\n    }\n"
                    "    server {\n        include " + str(tmp_path / "names.conf") + ";\n"
                    "    }\n}\n")
    (tmp_path / "names.conf").write_text("server_name d.example;\nlisten 81;\n")
    config = Config.load(str(main))
    servers = config.servers()
    assert [(s.names, [(l.port, l.ssl) for l in s.listens], s.ssl_on) for s in servers] == [
        (("a.example",), [(80, False)], False),
        (("b.example", "c.example"), [(443, True), (8443, False)], True),
        (("d.example",), [(81, False)], False)]
    assert [s.ref.unparsed is not None for s in servers] == [True, True, False]
    assert parser.dump(config.files[str(main)]) == main.read_text()


def test_ssl_on_is_read_through_includes_as_the_lookup_reads_it(tmp_path):
    main = write(tmp_path, {"nginx.conf": "http {\n    server {\n        listen 443;\n"
                            "        include ssl.inc;\n    }\n    server { listen 443; ssl off; }\n}\n",
                            "ssl.inc": "ssl on;\n"})
    config = Config.load(main)
    on, off = config.server_blocks()
    assert config.ssl_on(on) and not config.ssl_on(off)
    assert [s.ssl_on for s in config.servers()] == [True, False]
