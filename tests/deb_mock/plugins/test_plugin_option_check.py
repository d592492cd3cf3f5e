"""deb_mock.api.check_plugin_options, which the orchestrator's hub uses to refuse a wrong plugin option when a
target is made or a build requested (docs/plugins.md): it finds what a build would refuse (exit 2), with the
plugin's own Options models, naming the plugin, the option and what it takes; third-party names pass unimported;
a typo of a built-in name does not."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from deb_mock.api import check_plugin_options, plugin_names
from deb_mock.errors import BadInput
from deb_mock.plugins import loader

WRONG = [
    ("tmpfs", {"size": "banana"}, "plugin tmpfs: option size='banana': not a tmpfs size: 'banana' (e.g. 4G"),
    ("lintian", {"fail-on": "nonsense"},
     "plugin lintian: option fail-on='nonsense': Input should be 'error', 'warning' or 'none'"),
    ("lintian", {"colour": True},
     "plugin lintian: unknown option 'colour' (its options: fail-on, info, pedantic, profile, suppress-tags)"),
    ("lintian", {"info": "often"}, "plugin lintian: option info='often': Input should be a valid boolean"),
    ("lintian", {"suppress-tags": "x"}, "plugin lintian: option suppress-tags='x': Input should be a valid list"),
    ("autopkgtest", {"fail-on": "error"}, "plugin autopkgtest: option fail-on='error': Input should be 'failure'"),
    ("ccache", {"max-size": "1K"}, "plugin ccache: option max-size='1K': 1K: too small for a compiler cache"),
    ("sign", {"key": "/k.asc", "keyid": "zz"}, "plugin sign: option keyid='zz': not a key id or fingerprint"),
    ("tmpfs", {"enabled": True}, "plugin tmpfs: unknown option 'enabled' (its options: tmp, build-tree, size)"),
]
RIGHT: list[tuple[str, dict[str, Any]]] = [
    ("tmpfs", {"size": "4G", "build-tree": True}),
    ("tmpfs", {"size": 1048576}),
    ("lintian", {"fail_on": "none", "suppress-tags": ["no-manual-page"], "pedantic": True}),
    ("autopkgtest", {}),
    ("piuparts", {"fail-on": "none"}),
    ("ccache", {"max-size": "5G"}),
    ("sign", {"key": "/k.asc"}),
]


@pytest.mark.parametrize(("name", "options", "said"), WRONG)
def test_wrong_options_are_named_as_a_build_would_refuse_them(name: str, options: dict[str, Any],
                                                              said: str) -> None:
    problems = check_plugin_options(name, options)
    assert len(problems) == 1 and problems[0].startswith(said), problems
    with pytest.raises(BadInput, match=f"plugin {name}: invalid options"):  # the build's own check agrees
        loader.select({}, [name], [], {name: options})


@pytest.mark.parametrize(("name", "options"), RIGHT)
def test_right_options_pass_as_a_build_takes_them(name: str, options: dict[str, Any]) -> None:
    assert check_plugin_options(name, options) == []
    assert [e.name for e in loader.select({}, [name], [], {name: options}) if e.name == name] == [name]


def test_every_problem_is_listed_and_a_missing_required_option_is_left_to_the_builder() -> None:
    problems = check_plugin_options("lintian", {"fail-on": "all", "pedantic": "very", "nope": 1})
    assert sorted(p.split(":")[1].split("=")[0].strip() for p in problems) == [
        "option fail-on", "option pedantic", "unknown option 'nope' (its options"]
    assert check_plugin_options("sign", {}) == []  # its key may come from the builder's [plugins.sign] table


def test_third_party_names_pass_unimported_and_typos_of_built_ins_do_not(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "dm_check_probe.py").write_text("raise RuntimeError('imported')\n")
    info = tmp_path / "dm_check_probe-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dm-check-probe\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[deb_mock.plugins]\ncheckprobe = dm_check_probe:Probe\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "checkprobe" in plugin_names() and {"tmpfs", "lintian", "sign"} <= set(plugin_names())
    assert check_plugin_options("checkprobe", {"anything": [1, 2]}) == []
    assert check_plugin_options("hello", {"greeting": "hi"}) == []  # not installed here: the builder checks it
    assert "dm_check_probe" not in sys.modules
    for typo, meant in (("lintan", "lintian"), ("tmpf", "tmpfs"), ("autopkgtests", "autopkgtest")):
        (problem,) = check_plugin_options(typo, {})
        assert problem.startswith(f"unknown plugin {typo!r}: did you mean {meant}? (deb-mock's own plugins: "
                                  "autopkgtest, ccache, lintian, piuparts, sign, tmpfs"), problem
    assert check_plugin_options("lintian-extra", {}) == []  # a name of its own
