from __future__ import annotations

from pathlib import Path

import pytest

from deb_mock import config as configmod


def test_builtin_configs_are_listed() -> None:
    names = configmod.list_configs([])
    for suite in ("bookworm", "trixie", "sid"):
        assert f"debian-{suite}-amd64" in names
        cfg = configmod.load_config(f"debian-{suite}-amd64", [])
        assert cfg.suite == suite
        assert cfg.arch == "amd64"
        assert cfg.variant == "buildd"
        assert "fakeroot" in cfg.packages


def test_unknown_config_lists_the_valid_ones() -> None:
    with pytest.raises(configmod.ConfigError) as exc:
        configmod.load_config("debian-potato-amd64", [])
    assert "debian-trixie-amd64" in str(exc.value)
    assert "debian-potato-amd64" in str(exc.value)


def test_user_config_overrides_and_includes(tmp_path: Path) -> None:
    (tmp_path / "debian-trixie-amd64.toml").write_text(
        'include = ["templates/debian.toml"]\nsuite = "trixie"\nmirror = "http://mirror.example/debian"\n'
    )
    (tmp_path / "team.toml").write_text(
        'include = "debian-trixie-amd64"\npackages = ["fakeroot", "ccache"]\n'
        '[environment]\nDEB_BUILD_PROFILES = "nocheck"\n\n'
        '[[repos]]\nurl = "http://repo.example/debian"\nsuite = "team"\n'
    )
    over = configmod.load_config("debian-trixie-amd64", [tmp_path])
    assert over.mirror == "http://mirror.example/debian"
    team = configmod.load_config("team", [tmp_path])
    assert team.mirror == "http://mirror.example/debian"  # inherited through the include
    assert team.packages == ["fakeroot", "ccache"]
    assert team.environment == {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "DEB_BUILD_PROFILES": "nocheck"}
    assert team.repos[0].suite == "team"
    assert team.name == "team"
    assert team.root_cache_key() != over.root_cache_key()


def test_same_config_same_cache_key() -> None:
    a = configmod.load_config("debian-trixie-amd64", [])
    b = configmod.load_config("debian-trixie-amd64", [])
    assert a.root_cache_key() == b.root_cache_key()
    assert a.root_cache_key() != configmod.load_config("debian-sid-amd64", []).root_cache_key()
    # settings that do not change the bootstrap do not change the key
    assert a.model_copy(update={"parallel": 7}).root_cache_key() == a.root_cache_key()


def test_invalid_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('suite = "trixie"\nparralel = 3\n')
    with pytest.raises(configmod.ConfigError, match="parralel"):
        configmod.load_config("bad", [tmp_path])
    (tmp_path / "broken.toml").write_text('suite = "trixie\n')
    with pytest.raises(configmod.ConfigError, match="not valid TOML"):
        configmod.load_config("broken", [tmp_path])


def test_include_loop_is_reported(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('include = "b.toml"\nsuite = "x"\n')
    (tmp_path / "b.toml").write_text('include = "a.toml"\n')
    with pytest.raises(configmod.ConfigError, match="include loop"):
        configmod.load_config("a", [tmp_path])


def test_config_for_suite_uses_the_debian_template() -> None:
    cfg = configmod.config_for_suite("bookworm", "amd64", "http://m.example/debian")
    assert cfg.name == "debian-bookworm-amd64"
    assert cfg.mirror == "http://m.example/debian"
    assert cfg.variant == "buildd"
