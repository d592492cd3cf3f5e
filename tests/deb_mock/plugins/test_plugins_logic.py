"""Plugin logic without builds: which plugins run with which options, the flags, lintian's summary and
verdict, debsign's .changes update, the full-tmpfs diagnosis, ccache's stats log and sizes, and what piuparts'
log says (its findings, the command that failed, the leftovers) and the command line it gets."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from deb_mock import cli, cliopts
from deb_mock.errors import BadInput
from deb_mock.plugins import loader, piupartslog
from deb_mock.plugins.autopkgtest import dependencies_of_tests
from deb_mock.plugins.ccache import parse_stats_log, size_bytes
from deb_mock.plugins.lintian import summarise, verdict
from deb_mock.plugins.piuparts import fetched_versions, in_suite, piuparts_argv
from deb_mock.plugins.sign import updated_changes
from deb_mock.request import BuildResult
from deb_mock.session import buildscript


def names(enabled: list[loader.Enabled]) -> list[str]:
    return [e.name for e in enabled]


def test_only_tmpfs_runs_by_default_and_config_and_flags_choose_the_rest() -> None:
    assert names(loader.select({}, [], [], {})) == ["tmpfs"]
    assert names(loader.select({}, [], ["tmpfs"], {})) == []
    tables: dict[str, dict[str, Any]] = {"lintian": {"enabled": True, "fail-on": "warning"}}
    tables["tmpfs"] = {"enabled": False}
    chosen = loader.select(tables, ["sign"], [], {"sign": {"key": "/k.asc"}, "lintian": {"pedantic": True}})
    assert names(chosen) == ["lintian", "sign"]  # in their order; the config disabled tmpfs
    lint: Any = chosen[0].options
    assert (lint.fail_on, lint.pedantic) == ("warning", True)  # the config's option and the run's together
    # the run wins over the config
    assert names(loader.select({"lintian": {"enabled": True}}, [], ["lintian"], {})) == ["tmpfs"]


def test_the_default_enabled_list_matches_the_plugin_classes() -> None:
    """loader.DEFAULT_ENABLED spares a build importing the plugins it does not run: it must say what the
    classes say."""
    for name, target in loader.BUILTIN.items():
        assert loader._load(name, target).default_enabled == (name in loader.DEFAULT_ENABLED), name
    assert set(loader.BUILTIN) >= loader.DEFAULT_ENABLED


@pytest.mark.parametrize(
    ("tables", "enable", "disable", "options", "said"),
    [
        ({"nope": {}}, [], [], {},
         "unknown plugin(s): nope; available: autopkgtest, ccache, lintian, piuparts, sign, tmpfs"),
        ({}, ["nope"], [], {}, "unknown plugin(s): nope"),
        ({}, ["tmpfs"], ["tmpfs"], {}, "both name tmpfs"),
        ({"lintian": {"enabled": "yes"}}, [], [], {}, "[plugins.lintian] enabled: expected true or false"),
        ({}, ["lintian"], [], {"lintian": {"fail-on": "info"}}, "plugin lintian: invalid options: fail-on"),
        ({}, ["lintian"], [], {"lintian": {"colour": True}}, "plugin lintian: invalid options: colour"),
        ({}, ["sign"], [], {}, "plugin sign: invalid options: key: Field required"),
        ({}, [], [], {"tmpfs": {"size": "lots"}}, "not a tmpfs size: 'lots'"),
        ({}, ["sign"], [], {"sign": {"key": "k", "keyid": "$(id)"}}, "not a key id"),
        ({}, ["ccache"], [], {"ccache": {"max-size": "lots"}}, "not a size: 'lots'"),
        ({}, ["ccache"], [], {"ccache": {"max-size": "10K"}}, "too small for a compiler cache"),
        ({}, ["piuparts"], [], {"piuparts": {"fail-on": "leftovers"}}, "plugin piuparts: invalid options: fail-on"),
    ],
)
def test_wrong_plugin_names_and_options_are_bad_input(tables, enable, disable, options, said) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BadInput) as exc:
        loader.select(tables, enable, disable, options)
    assert said in str(exc.value)


def test_plugin_option_values_are_toml_or_text() -> None:
    assert loader.parse_option("tmpfs:size=4G") == ("tmpfs", "size", "4G")
    assert loader.parse_option("tmpfs:build_tree=true") == ("tmpfs", "build_tree", True)
    assert loader.parse_option("lintian:suppress-tags=[\"a\", \"b\"]") == ("lintian", "suppress-tags", ["a", "b"])
    tmpfs: Any = loader.select({}, [], [], {"tmpfs": {"size": 1048576}})[0].options
    assert tmpfs.size == "1048576"
    for bad in ("tmpfs", "tmpfs:size", "Tmpfs:size=1", "tmpfs:si ze=1", "lintian:x=[1"):
        with pytest.raises(BadInput):
            loader.parse_option(bad)


def test_cli_maps_plugin_flags_onto_the_request() -> None:
    args = cli.parser().parse_args(
        ["--rebuild", "x.dsc", "--run-lintian", "--run-autopkgtest", "--run-piuparts", "--enable-plugin", "sign",
         "--disable-plugin", "tmpfs", "--plugin-option", "sign:key=/k.asc", "--plugin-option", "lintian:fail-on=none"]
    )
    assert cliopts.plugin_fields(args) == {
        "enable_plugins": ["sign", "lintian", "autopkgtest", "piuparts"],
        "disable_plugins": ["tmpfs"],
        "plugin_options": {"sign": {"key": "/k.asc"}, "lintian": {"fail-on": "none"}},
    }
    args = cli.parser().parse_args(["--init", "--run-lintian"])
    with pytest.raises(BadInput, match="--run-lintian: build options"):
        cliopts.check_applicable(args, building=False)


def test_result_json_carries_plugin_results() -> None:
    r = BuildResult(state="failed", exit_code=1, source={}, arch="amd64",
                    plugins={"lintian": {"state": "failed", "counts": {"error": 1}}})
    data = r.to_json()
    assert data["plugins"]["lintian"]["counts"] == {"error": 1}
    assert BuildResult.from_json(data).plugins == r.plugins


LINTIAN_OUTPUT = """\
E: dm-lint: dir-or-file-in-home [home/dm-lint/README]
E: dm-lint: dir-or-file-in-home [home/dm-lint/]
W: dm-lint: initial-upload-closes-no-bugs [usr/share/doc/dm-lint/changelog.gz:1]
W: dm-lint source: no-nmu-in-changelog
I: dm-lint: extended-description-is-probably-too-short
N: a note that is not a tag
"""


def test_lintian_summary_and_fail_on() -> None:
    counts, tags = summarise(LINTIAN_OUTPUT)
    assert counts == {"error": 2, "warning": 2, "info": 1, "pedantic": 0, "experimental": 0, "overridden": 0}
    assert tags == {
        "error": ["dir-or-file-in-home"],
        "warning": ["initial-upload-closes-no-bugs", "no-nmu-in-changelog"],
        "info": ["extended-description-is-probably-too-short"],
    }
    assert verdict(counts, tags, "error") == "2 error tag(s) (fail-on: error): dir-or-file-in-home"
    assert verdict(counts, tags, "warning").startswith("2 error tag(s), 2 warning tag(s) (fail-on: warning)")  # type: ignore[union-attr]
    assert verdict(counts, tags, "none") is None
    clean, _ = summarise("W: x: some-warning\n")
    assert verdict(clean, {}, "error") is None


def test_signed_buildinfo_checksums_replace_the_old_ones_in_changes() -> None:
    old, new = b"old buildinfo\n", b"-----BEGIN PGP SIGNED MESSAGE-----\nsigned buildinfo\n"
    md5, sha1, sha256 = (hashlib.new(a, old).hexdigest() for a in ("md5", "sha1", "sha256"))
    changes = (
        "Format: 1.8\nChecksums-Sha1:\n"
        f" {sha1} {len(old)} x_1_all.deb\n {sha1} {len(old)} x_1_amd64.buildinfo\n"
        f"Checksums-Sha256:\n {sha256} {len(old)} x_1_amd64.buildinfo\n"
        f"Files:\n {md5} {len(old)} misc optional x_1_all.deb\n {md5} {len(old)} misc optional x_1_amd64.buildinfo\n"
    )
    out = updated_changes(changes, "x_1_amd64.buildinfo", new)
    n = len(new)
    assert f" {hashlib.sha1(new).hexdigest()} {n} x_1_amd64.buildinfo\n" in out
    assert f" {hashlib.sha256(new).hexdigest()} {n} x_1_amd64.buildinfo\n" in out
    assert f" {hashlib.md5(new).hexdigest()} {n} misc optional x_1_amd64.buildinfo\n" in out
    assert f" {sha1} {len(old)} x_1_all.deb\n" in out and f" {md5} {len(old)} misc optional x_1_all.deb\n" in out


def test_a_full_tmpfs_is_named_with_the_option_to_raise() -> None:
    tmpfs = {"/tmp": None, buildscript.BUILD_TREE: "8m"}
    tail = (f"make: write error\n@@@ deb-mock tmpfs {buildscript.BUILD_TREE} 0 2048 4096\n"
            "@@@ deb-mock tmpfs /tmp 900 1000 4096\n")
    said = buildscript.full_tmpfs(tail, tmpfs)
    assert said is not None and "tmpfs /build/reproducible-path (size 8m)" in said and "tmpfs:size=" in said
    roomy = "@@@ deb-mock tmpfs /tmp 100000 200000 4096\n"
    assert buildscript.full_tmpfs(roomy, tmpfs) is None
    assert buildscript.output_dir(tmpfs) == "build/deb-mock-results"
    assert buildscript.output_dir({"/tmp": None}) == "build/reproducible-path"


THIRD_PARTY = '''
from deb_mock.plugins import Plugin


class Probe(Plugin):
    name = "probe"
'''


def test_entry_point_plugins_are_listed_and_imported_only_when_enabled(  # type: ignore[no-untyped-def]
    tmp_path, monkeypatch, capsys
) -> None:
    (tmp_path / "dm_probe_plugin.py").write_text(THIRD_PARTY)
    info = tmp_path / "dm_probe_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dm-probe-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[deb_mock.plugins]\nprobe = dm_probe_plugin:Probe\nBad Name = x:y\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert loader.available()["probe"] == "dm_probe_plugin:Probe"  # a name that is no plugin name is ignored
    assert names(loader.select({"probe": {"enabled": False}}, [], [], {})) == ["tmpfs"]
    import sys

    assert "dm_probe_plugin" not in sys.modules  # installed and configured, not enabled: not even imported
    assert names(loader.select({}, ["probe"], [], {})) == ["tmpfs", "probe"]
    assert cli.main(["--list-plugins", "-D", "plugins.probe.enabled=true"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split() for line in listed] == [
        ["autopkgtest", "disabled", "built-in"],
        ["ccache", "disabled", "built-in"],
        ["lintian", "disabled", "built-in"],
        ["piuparts", "disabled", "built-in"],
        ["probe", "enabled", "dm_probe_plugin:Probe"],
        ["sign", "disabled", "built-in"],
        ["tmpfs", "enabled", "built-in"],
    ]


def test_autopkgtest_dependencies_from_the_tests_control() -> None:
    control = """\
Tests: smoke
Depends: @, hello (>= 2) | cowsay, python3:any

Test-Command: true
Restrictions: superficial

Tests: build
Depends: @builddeps@, gcc
"""
    names, missed = dependencies_of_tests(control, ["dm-a", "dm-b"])
    assert (names, missed) == (["dm-a", "dm-b", "hello", "python3", "gcc"], ["@builddeps@"])


STATS_LOG = """\
# /build/reproducible-path/x-1.0/a.c
direct_cache_hit
local_storage_hit
# /build/reproducible-path/x-1.0/b.c
preprocessed_cache_hit
direct_cache_miss
# /build/reproducible-path/x-1.0/c.c
cache_miss
direct_cache_miss
preprocessed_cache_miss
local_storage_write
# conftest.c
called_for_link
"""


def test_ccache_stats_log_and_sizes() -> None:
    assert parse_stats_log(STATS_LOG) == {"hits": 2, "direct_hits": 1, "preprocessed_hits": 1, "misses": 1,
                                          "uncacheable": 1}
    assert parse_stats_log("")["hits"] == 0
    assert [size_bytes(s) for s in ("2G", "500M", "1.5Gi", "16M", "4096")] == [
        2 * 10**9, 5 * 10**8, int(1.5 * 2**30), 16 * 10**6, 4096]
    with pytest.raises(ValueError):
        size_bytes("2 gallons")


PIUPARTS_FAILED_PURGE = """\
0m0.0s INFO: piuparts version 1.6.0 starting up.
0m0.5s INFO: apt-cache does not know about any of the requested packages
0m1.6s INFO: Installation of ['./tmp/dm-leaky_1.0_all.deb'] ok
0m3.9s ERROR: FAIL: Package purging left files on system:
  /etc/dm-leaky.conf\t not owned
  /var/lib/dm-leaky/\t not owned

0m3.9s ERROR: FAIL: Installation and purging test.
0m4.3s ERROR: piuparts run ends.
"""
PIUPARTS_FAILED_POSTINST = """\
0m0.0s INFO: piuparts version 1.6.0 starting up.
0m1.8s ERROR: Command failed (status=100): ['chroot', '/x/tmp1', 'apt-get', '-y', 'install', './tmp/p.deb']
  Setting up p (1.0) ...
  dpkg: error processing package p (--configure):
  E: Sub-process /usr/bin/dpkg returned an error code (1)

0m1.8s ERROR: piuparts run ends.
"""


def test_piuparts_log_findings_and_command_line() -> None:
    ok = piupartslog.parse("0m0.0s INFO: piuparts version 1.6.0 starting up.\n"
                           "0m3.9s INFO: PASS: Installation and purging test.\n0m4.3s INFO: PASS: All tests.\n")
    assert (ok.version, ok.passed, ok.failed, ok.failed_command) == (
        "1.6.0", ["Installation and purging test", "All tests"], [], None)
    purge = piupartslog.parse(PIUPARTS_FAILED_PURGE)
    assert purge.failed == ["Package purging left files on system", "Installation and purging test"]
    assert purge.leftovers == ["/etc/dm-leaky.conf", "/var/lib/dm-leaky/"] and purge.ended
    assert piupartslog.summary(purge) == ("Package purging left files on system: /etc/dm-leaky.conf, "
                                          "/var/lib/dm-leaky/; Installation and purging test")
    post = piupartslog.parse(PIUPARTS_FAILED_POSTINST)
    assert post.failed == [] and post.failed_command is not None and post.failed_command.endswith("(status 100)")
    assert "returned an error code (1)" in post.command_output[-1]
    assert piupartslog.summary(post).startswith("command failed: ['chroot', '/x/tmp1', 'apt-get'")
    assert piupartslog.summary(piupartslog.parse("")).startswith("piuparts failed without saying why")
    argv = piuparts_argv("trixie", ["a_1_all.deb"], upgrade=False)
    assert argv[-1] == "/deb-mock/piuparts/debs/a_1_all.deb" and "--no-upgrade-test" in argv
    assert argv[argv.index("--distribution") + 1] == "trixie" and "--keep-sources-list" in argv
    assert "--no-upgrade-test" not in piuparts_argv("trixie", ["a_1_all.deb"], upgrade=True)
    assert in_suite("hello 2.10-5\nbad\n", ["hello", "dm-x"]) == ["hello"]
    assert fetched_versions(["hello_2.10-5_amd64.deb", "libc6_2.41_amd64.deb", "e_1%3a2.0-1_all.deb"],
                            ["hello", "e"]) == {"hello": "2.10-5", "e": "1:2.0-1"}
