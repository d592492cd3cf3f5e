"""The build options' parsing: -D values as TOML, --addrepo lines and keys, profiles and build options,
the CLI's mapping onto the build request, and --copyout's host side (a staged tree with planted entries)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from deb_mock import aptsources, cli, cliopts, profiles
from deb_mock import config as configmod
from deb_mock.chroot import copy
from deb_mock.errors import BadInput, Refused
from deb_mock.request import AptSource
from deb_mock.session.sandboxes import EXTRA_LIST, ExtraSources, build_sandbox

ARMOURED = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZ0000BYJKwYBBAHaRw8BAQdA\n-----END PGP PUBLIC KEY BLOCK-----\n"


# -- -D KEY=VALUE ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("parallel=2", {"parallel": 2}),
        ("check_valid_until=false", {"check_valid_until": False}),
        ('packages=["ccache", "eatmydata"]', {"packages": ["ccache", "eatmydata"]}),
        ('environment={ FOO = "bar" }', {"environment": {"FOO": "bar"}}),
        ("environment.DEB_BUILD_OPTIONS=noopt", {"environment": {"DEB_BUILD_OPTIONS": "noopt"}}),
        ('mirror="http://mirror.example/debian"', {"mirror": "http://mirror.example/debian"}),
        ("mirror=http://mirror.example/debian", {"mirror": "http://mirror.example/debian"}),  # not TOML: a string
        ("root_cache_max_age_days = 1.5", {"root_cache_max_age_days": 1.5}),
        (
            'repos=[{url = "http://r.example/debian", suite = "extra"}]',
            {"repos": [{"url": "http://r.example/debian", "suite": "extra"}]},
        ),
    ],
)
def test_define_values_are_toml(text: str, expected: dict[str, object]) -> None:
    assert configmod.parse_define(text) == expected


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("parallel", "expected KEY=VALUE"),
        ("=2", "expected KEY=VALUE"),
        ("a b=2", "expected KEY=VALUE"),
        ("name=other", "not a setting -D can change"),
        ("include=x", "not a setting -D can change"),
        ("packages=[ccache", "not a TOML value"),
        ('mirror="unterminated', "not a TOML value"),
        ('parallel=1\nname = "x"', "one TOML value"),  # no smuggling of a second key
    ],
)
def test_define_errors_say_what_is_wrong(text: str, said: str) -> None:
    with pytest.raises(configmod.ConfigError, match=said):
        configmod.parse_define(text)


def test_defines_merge_over_the_config_and_are_validated() -> None:
    over = configmod.merge_defines(["parallel=2", "environment.FOO=bar", "parallel=3", 'packages=["ccache"]'])
    cfg = configmod.load_config("debian-trixie-amd64", [], over)
    assert cfg.parallel == 3 and cfg.packages == ["ccache"]
    assert cfg.environment == {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "FOO": "bar"}  # merged, not replaced
    assert configmod.load_config("debian-trixie-amd64", []).parallel == 0  # only this run
    with pytest.raises(configmod.ConfigError, match=r"with -D: invalid config: parallel: .*greater than or equal"):
        configmod.load_config("debian-trixie-amd64", [], {"parallel": -1})
    with pytest.raises(configmod.ConfigError, match="no_such_key"):
        configmod.load_config("debian-trixie-amd64", [], {"no_such_key": 1})
    suite = configmod.config_for_suite("bookworm", overrides={"build_timeout": 60})
    assert suite.build_timeout == 60 and suite.suite == "bookworm"


# -- --addrepo ----------------------------------------------------------------------------------------------


def test_addrepo_lines(tmp_path: Path) -> None:
    key = tmp_path / "keys" / "repo.asc"
    key.parent.mkdir()
    key.write_text(ARMOURED)
    src = aptsources.parse_line("deb [signed-by=keys/repo.asc] http://127.0.0.1:8080/repo extra main contrib", tmp_path)
    assert src == AptSource("http://127.0.0.1:8080/repo", "extra", ("main", "contrib"), str(key))
    bare = aptsources.parse_line("https://deb.debian.org/debian trixie-backports main")  # no "deb", no key
    assert bare.key is None and bare.suite == "trixie-backports"
    flat = aptsources.parse_line(f"deb file:{tmp_path} ./")
    assert flat.components == () and flat.one_line(None) == f"deb file:{tmp_path} ./"
    assert aptsources.parse_line(f"deb file://{tmp_path} s main").url == f"file://{tmp_path}"


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("deb-src http://r.example/debian trixie main", "deb-src"),
        ("deb [trusted=yes] http://r.example/debian trixie main", "only option is signed-by"),
        ("deb [arch=amd64] http://r.example/debian trixie main", "only option is signed-by"),
        ("deb [signed-by=https://r.example/key.asc] http://r.example/debian trixie main", "keys are never fetched"),
        ("deb ftp://r.example/debian trixie main", "http://, https:// or file: URL"),
        ("deb mirror+http://r.example/list trixie main", "http://, https:// or file: URL"),
        ("deb http:///debian trixie main", "names no host"),
        ("deb file:/no/such/repo trixie main", "no such directory"),
        ("deb http://r.example/debian", "expected 'deb"),
        ("deb http://r.example/debian trixie", "at least one component"),
        ("deb http://r.example/debian ./ main", "takes no components"),
        ("deb http://r.example/debian ../../etc main", "not a suite name"),
        ("deb http://r.example/debian trixie ma;in", "not a component name"),
    ],
)
def test_addrepo_errors(line: str, said: str) -> None:
    with pytest.raises(aptsources.SourceError, match=said):
        aptsources.parse_line(line)


def test_keys_are_local_public_keys(tmp_path: Path) -> None:
    where = "repo"
    (tmp_path / "a.asc").write_text(ARMOURED)
    assert aptsources.key_material(str(tmp_path / "a.asc"), where) == (ARMOURED.encode(), ".asc")
    assert aptsources.key_material(ARMOURED, where)[1] == ".asc"  # key text (the orchestrator passes it)
    for first in (0x99, 0x98, 0xC6):  # public-key packets, old and new format
        (tmp_path / "b.gpg").write_bytes(bytes([first, 1, 13, 4]))
        assert aptsources.key_material(str(tmp_path / "b.gpg"), where)[1] == ".gpg"
    refused = {
        "secret.asc": (b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n", "SECRET key"),
        "secret.gpg": (bytes([0x95, 1, 2]), "SECRET key"),
        "secret-new.gpg": (bytes([0xC5, 1, 2]), "SECRET key"),
        "text.asc": (b"not a key\n", "not an OpenPGP public key"),
        "big.gpg": (b"\x99" * (aptsources.MAX_KEY_BYTES + 1), "larger than"),
    }
    for name, (data, said) in refused.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(aptsources.SourceError, match=said):
            aptsources.key_material(str(tmp_path / name), where)
    with pytest.raises(aptsources.SourceError, match="does not exist"):
        aptsources.key_material(str(tmp_path / "missing.asc"), where)
    with pytest.raises(aptsources.SourceError, match="not a regular file"):
        aptsources.key_material(str(tmp_path), where)
    os.mkfifo(tmp_path / "fifo.asc")  # never blocks on a FIFO
    with pytest.raises(aptsources.SourceError, match="not a regular file"):
        aptsources.key_material(str(tmp_path / "fifo.asc"), where)


def test_extra_sources_reach_the_sandbox_files(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (tmp_path / "k.asc").write_text(ARMOURED)
    (tmp_path / "k.gpg").write_bytes(bytes([0x99, 1, 13]))
    sources = [
        AptSource("http://127.0.0.1:9/r", "extra", ("main",), str(tmp_path / "k.asc")),
        AptSource(f"file:{repo}", "local", ("main",), str(tmp_path / "k.gpg")),
        AptSource("http://deb.debian.org/debian", "trixie-backports", ("main",)),
    ]
    extra = ExtraSources.prepare(sources, tmp_path / "work")
    assert extra.present
    assert (extra.dir / EXTRA_LIST).read_text().splitlines() == [
        "deb [signed-by=/etc/apt/keyrings/deb-mock-0.asc] http://127.0.0.1:9/r extra main",
        "deb [signed-by=/etc/apt/keyrings/deb-mock-1.gpg] file:/deb-mock/repos/1 local main",
        "deb http://deb.debian.org/debian trixie-backports main",
    ]
    assert (extra.dir / "keys" / "deb-mock-1.gpg").read_bytes() == bytes([0x99, 1, 13])
    assert [(b.src, b.dst, b.ro) for b in extra.binds] == [(repo, "/deb-mock/repos/1", True)]
    with pytest.raises(BadInput, match=r"key file .*missing\.asc does not exist"):
        ExtraSources.prepare([AptSource("http://r.example/d", "s", ("main",), str(tmp_path / "missing.asc"))],
                             tmp_path / "work2")


def test_config_repos_become_sources_with_keys_relative_to_the_config(tmp_path: Path) -> None:
    builtin = configmod.BUILTIN_DIR / "debian-trixie-amd64.toml"
    (tmp_path / "team.toml").write_text(
        f'include = "{builtin}"\n\n[[repos]]\nurl = "http://r.example/debian"\nsuite = "team"\n'
        'components = ["main", "extra"]\nkey = "keys/team.asc"\n\n'
        f'[[repos]]\nurl = "http://r2.example/debian"\nsuite = "two"\nkey = """{ARMOURED}"""\n'
    )
    cfg = configmod.load_config("team", [tmp_path])
    assert aptsources.config_sources(cfg) == [
        AptSource("http://r.example/debian", "team", ("main", "extra"), str(tmp_path / "keys" / "team.asc")),
        AptSource("http://r2.example/debian", "two", ("main",), ARMOURED),
    ]
    assert cfg.root_cache_key() == configmod.load_config("debian-trixie-amd64", []).root_cache_key()


# -- profiles and build options ---------------------------------------------------------------------------


def test_profiles_and_build_options() -> None:
    cfg = configmod.load_config("debian-trixie-amd64", [], {"parallel": 2})
    assert profiles.split_profiles(["a,b", "c  a", ""]) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="not a build profile name"):
        profiles.split_profiles(["Stage1"])
    with pytest.raises(ValueError, match="not a build profile name"):
        profiles.check_profile("a;rm")
    assert profiles.active_profiles(cfg, [], False) == []
    env = profiles.build_env(cfg, [])
    assert env["DEB_BUILD_OPTIONS"] == "parallel=2" and "DEB_BUILD_PROFILES" not in env
    active = profiles.active_profiles(cfg, ["pkg.dm.stage1"], True)
    assert active == ["pkg.dm.stage1", "nocheck"]
    env = profiles.build_env(cfg, active)
    assert env["DEB_BUILD_OPTIONS"] == "parallel=2 nocheck"
    assert env["DEB_BUILD_PROFILES"] == "pkg.dm.stage1 nocheck"
    assert profiles.apt_option(active) == "-P pkg.dm.stage1,nocheck"
    assert profiles.apt_option([]) == ""
    # the config's own DEB_BUILD_OPTIONS and DEB_BUILD_PROFILES are kept, and added to
    mine = configmod.load_config(
        "debian-trixie-amd64", [], {"environment": {"DEB_BUILD_OPTIONS": "noopt", "DEB_BUILD_PROFILES": "nodoc"}}
    )
    active = profiles.active_profiles(mine, ["nodoc", "x"], True)
    assert active == ["nodoc", "x", "nocheck"]
    assert profiles.build_env(mine, active)["DEB_BUILD_OPTIONS"] == "noopt nodoc nocheck"
    sandbox = build_sandbox(mine, (Path("/nonexistent"),), Path("/nonexistent/b"), [], False, active)
    assert sandbox.env["DEB_BUILD_PROFILES"] == "nodoc x nocheck" and sandbox.env["LANG"] == "C.UTF-8"


def _fields(*argv: str) -> dict[str, object]:
    args = cli.parser().parse_args(["--rebuild", "x.dsc", *argv])
    return cliopts.request_fields(args)


def test_cli_maps_build_options_onto_the_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert _fields() == {
        "nocheck": False, "profiles": [], "config_overrides": {}, "extra_sources": [],
        "keep_root": False, "keep_failed_root": True, "postinstall": False,
        "enable_plugins": [], "disable_plugins": [], "plugin_options": {},
    }
    got = _fields(
        "--profile", "a,b", "--profile", "c", "--with", "d", "--without", "doc", "-D", "parallel=2",
        "--define", "environment.X=1", "--addrepo", "deb http://r.example/d s main",
        "--no-clean", "--postinstall",
    )
    assert got["profiles"] == ["a", "b", "c", "d", "nodoc"] and got["nocheck"] is False
    assert got["config_overrides"] == {"parallel": 2, "environment": {"X": 1}}
    assert got["extra_sources"] == [AptSource("http://r.example/d", "s", ("main",))]
    assert got["keep_root"] is True and got["postinstall"] is True
    assert _fields("--without", "check")["nocheck"] is True  # mock's spelling of --nocheck
    assert _fields("--profile", "nocheck") == _fields("--nocheck")
    assert _fields("--no-cleanup-after")["keep_root"] is True
    assert _fields("--cleanup-after")["keep_failed_root"] is False
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["--rebuild", "x.dsc", "--no-clean", "--cleanup-after"])


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--init", "--nocheck"], "--nocheck: build options; use them with --rebuild"),
        (["--shell", "--addrepo", "deb http://r.example/d s main", "--no-clean"], "--addrepo, --no-clean: build"),
        (["--rebuild", "x.dsc", "--addrepo", "deb-src http://r.example/d s main"], "deb-src"),
        (["--rebuild", "x.dsc", "--profile", "Bad"], "not a build profile name"),
        (["--rebuild", "x.dsc", "-D", "parallel"], "expected KEY=VALUE"),
        (["--rebuild", "x.dsc", "-D", "parallel=-2"], "invalid config: parallel"),
        (["--copyout", "/etc/hostname"], "needs at least one path and a destination"),
        (["--copyin", "/no/such/file", "/root/"], "no such file or directory on the host"),
        (["--copyin", "/etc/hostname", "root/x"], "must be absolute"),
        (["--copyout", "/root/../../etc/shadow", "."], "may not leave the chroot"),
    ],
)
def test_cli_usage_errors_exit_2_before_any_work(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if argv[0] in ("--copyin", "--copyout"):
        # these need a root: check the arguments the way the CLI does before one is made
        with pytest.raises(BadInput, match=said):
            if argv[0] == "--copyin":
                copy.copy_in(None, argv[1:], tmp_path / "log")  # type: ignore[arg-type]
            else:
                copy.copy_out(None, argv[1:], None, tmp_path / "log")  # type: ignore[arg-type]
        return
    assert cli.main(["--cache-dir", str(tmp_path / "cache"), *argv]) == 2
    assert said in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


# -- --copyin/--copyout paths, and --copyout's host side -------------------------------------------------------


def test_chroot_paths_stay_in_the_chroot() -> None:
    assert copy.chroot_path("//root/./a/") == "/root/a"
    assert copy.chroot_path("/") == "/"
    for bad in ("root/a", "/root/../../etc", "..", "/a/.."):
        with pytest.raises(BadInput, match="may not leave the chroot"):
            copy.chroot_path(bad)


def _stage(tmp_path: Path) -> Path:
    """A staging tree as the sandbox's ``cp -r -P`` leaves it: entry 0 a directory, entry 1 a file."""
    stage = tmp_path / "stage"
    (stage / "0" / "d" / "sub").mkdir(parents=True)
    (stage / "0" / "d" / "a.txt").write_text("a\n")
    (stage / "0" / "d" / "sub" / "run.sh").write_text("#!/bin/sh\n")
    (stage / "0" / "d" / "sub" / "run.sh").chmod(0o755)
    (stage / "1").mkdir()
    (stage / "1" / "f").write_text("f\n")
    return stage


def test_copyout_writes_a_checked_staged_tree(tmp_path: Path) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    written = copy._from_stage(_stage(tmp_path), ["/root/d", "/etc/f"], ["d", "f"], dest)
    assert sorted(p.relative_to(dest).as_posix() for p in written) == ["d/a.txt", "d/sub/run.sh", "f"]
    assert (dest / "d" / "a.txt").read_text() == "a\n" and (dest / "f").read_text() == "f\n"
    assert (dest / "d" / "sub" / "run.sh").stat().st_mode & 0o777 == 0o755


def test_copyout_refuses_planted_links_fifos_and_hard_links(tmp_path: Path, host_dir: Path) -> None:
    stage = _stage(tmp_path)
    secret = host_dir / "marker"
    (stage / "0" / "d" / "leak").symlink_to(secret)
    (stage / "0" / "d" / "sub" / "hostdir").symlink_to(host_dir)
    os.mkfifo(stage / "0" / "d" / "pipe")
    os.link(stage / "0" / "d" / "a.txt", stage / "0" / "d" / "hard")
    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(Refused) as exc:
        copy._from_stage(stage, ["/root/d", "/etc/f"], ["d", "f"], dest)
    said = str(exc.value)
    assert "nothing was copied" in said
    for offender in ("/root/d/leak: is a symbolic link", "/root/d/sub/hostdir: is a symbolic link",
                     "/root/d/pipe: is a FIFO", "/root/d/hard: is a hard link", "/root/d/a.txt: is a hard link"):
        assert offender in said
    assert list(dest.iterdir()) == []
    # the top entry itself a link (the sandbox's check refuses it first; the host refuses it too)
    top = tmp_path / "stage-top"
    (top / "0").mkdir(parents=True)
    (top / "0" / "f").symlink_to(secret)
    with pytest.raises(Refused, match="/etc/f: is a symbolic link"):
        copy._from_stage(top, ["/etc/f"], ["f"], dest)
    assert list(dest.iterdir()) == []
