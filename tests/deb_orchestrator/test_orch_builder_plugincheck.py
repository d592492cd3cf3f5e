"""builder --plugin/--plugin-option are checked against the deb-mock installed here before the builder starts."""

from __future__ import annotations

import pytest

from deb_orchestrator.builder import plugincheck
from deb_orchestrator.cli.common import UsageError
from deb_orchestrator.cli.plugins import builder_plugins


def test_builder_plugins_are_checked_against_this_machines_deb_mock() -> None:
    assert builder_plugins(["lintian"], ["ccache:max-size='2G'"]) == {"lintian": {}, "ccache": {"max-size": "2G"}}
    assert plugincheck.problems({"lintian": {"fail-on": "error"}}) == []
    (missing,) = plugincheck.problems({"no-such-plugin": {}})
    assert missing.startswith("plugin no-such-plugin: not installed here (deb-mock has ") and "lintian" in missing
    (bad,) = plugincheck.problems({"lintian": {"fail-on": "nonsense"}})
    assert "lintian" in bad and "fail-on" in bad
    with pytest.raises(UsageError, match="fail-on"):
        builder_plugins([], ["lintian:fail-on=nonsense"])
