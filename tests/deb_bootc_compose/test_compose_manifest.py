"""Manifest schema: the minimal manifest works as written; every error names file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest

from deb_bootc_compose import manifest
from deb_bootc_compose.manifest import ManifestError

MINIMAL = """\
name: debian-bootc
version: "13"
suite: trixie
sources:
  - url: http://deb.debian.org/debian
    components: [main]
packages: [systemd, systemd-sysv, linux-image-amd64, openssh-server, hello]
"""
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "m.yaml"
    p.write_text(text)
    return p


def errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        manifest.load(write(tmp_path, text))
    return info.value.problems


def test_minimal_manifest_defaults(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL))
    assert m.arches == ["amd64"]
    assert list(m.variants) == ["base"]
    assert m.outputs == ["oci"]
    assert m.oci.max_layers == 64
    assert m.ref_for("base", "amd64") == "debian-bootc/trixie/amd64/base"
    assert m.variant_packages("base") == ["systemd", "systemd-sysv", "linux-image-amd64", "openssh-server", "hello"]
    assert m.sources[0].repo_suite(m.suite) == "trixie"
    assert m.sources[0].pin_priority() == 500
    assert m.short_name == "debian-bootc"


def test_examples_load() -> None:
    found = sorted(EXAMPLES.glob("*.yaml"))
    assert len(found) >= 2
    for path in found:
        m = manifest.load(path)
        assert m.name and m.sources


def test_security_example_has_updates_and_security() -> None:
    m = manifest.load(EXAMPLES / "trixie-updates-security.yaml")
    urls = {(s.repo_url(), s.repo_suite(m.suite)) for s in m.sources}
    assert ("http://deb.debian.org/debian", "trixie-updates") in urls
    assert ("http://deb.debian.org/debian-security", "trixie-security") in urls


def test_full_schema(tmp_path: Path) -> None:
    text = MINIMAL + """\
exclude: [nano]
variants:
  base: {}
  devel: {add: [gdb], remove: [hello]}
arches: [amd64, arm64]
kernel_args: [console=ttyS0]
users: [{name: admin, uid: 1000, groups: [sudo], password_hash: "$6$x$y", ssh_authorized_keys: ["ssh-ed25519 AAAA"]}]
groups: [{name: wheel, gid: 990}]
files: [{path: /etc/motd, content: "hi\\n", mode: "0644"}]
postprocess: ["echo hi", {name: two, file: two.sh}]
ref: "debian/{suite}/{arch}/{variant}/{version}"
oci: {name: example.org/debian-bootc, tag: latest, labels: {a: b}, max_layers: 32}
outputs: [oci, raw, qcow2]
boot_test: {enabled: true, commands: [hello], timeout: 600}
build: {target: trixie, sources: [http://example.org/x.dsc]}
"""
    text = text.replace(
        "    components: [main]\n",
        "    components: [main]\n  - orchestrator: {url: 'http://127.0.0.1:8080/', tag: trixie-dest}\n", 1
    )
    m = manifest.load(write(tmp_path, text))
    assert m.variant_packages("devel") == ["systemd", "systemd-sysv", "linux-image-amd64", "openssh-server", "gdb"]
    orch = m.sources[1]
    assert orch.repo_url() == "http://127.0.0.1:8080/repos/trixie-dest"
    assert orch.repo_suite("trixie") == "trixie-dest"
    assert orch.pin_priority() > m.sources[0].pin_priority()
    assert m.postprocess[0].script == "echo hi" and m.postprocess[1].file == "two.sh"
    assert m.ref_for("devel", "arm64") == "debian/trixie/arm64/devel/13"
    assert m.build is not None and m.build.target == "trixie"


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, "name: x\nversion: [1\nsuite: trixie\n")
    assert str(tmp_path / "m.yaml") in problem and "YAML syntax error" in problem
    assert ":3:" in problem or ":2:" in problem


def test_unknown_key_names_file_line_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("    components: [main]\n", "    components: [main]\n    compnents: [main]\n")
    (problem,) = errors(tmp_path, text)
    assert problem.startswith(f"{tmp_path / 'm.yaml'}:7:sources.0.compnents:")
    assert "unknown key" in problem


def test_missing_required_key(tmp_path: Path) -> None:
    text = MINIMAL.replace('suite: trixie\n', "")
    (problem,) = errors(tmp_path, text)
    assert problem.endswith("suite: required key is missing")


def test_several_errors_reported_at_once(tmp_path: Path) -> None:
    text = MINIMAL.replace("hello]", "Hello]") + "oci:\n  max_layers: 500\narches: [x86_64]\n"
    problems = errors(tmp_path, text)
    joined = "\n".join(problems)
    assert f"{tmp_path / 'm.yaml'}:7:packages: not Debian package names: 'Hello'" in joined
    assert ":9:oci.max_layers:" in joined
    assert ":10:arches:" in joined and "x86_64" in joined
    assert len(problems) == 3


@pytest.mark.parametrize(
    ("snippet", "key", "needle"),
    [
        ("sources:\n  - {components: [main]}\n", "sources.0", "exactly one of 'url' or 'orchestrator"),
        ("sources:\n  - url: ftp://x\n", "sources.0", "must start with http"),
        ("ref: '{name}/{branch}'\n", "ref", "unknown field"),
        ("files: [{path: /var/lib/x, content: y}]\n", "files.0", "under /var"),
        ("files: [{path: etc/x, content: y}]\n", "files.0", "must be absolute"),
        ("users: [{name: Root!}]\n", "users.0.name", "not a valid user name"),
        ("users: [{name: bob, password_hash: secret}]\n", "users.0.password_hash", "never a clear-text password"),
        ("outputs: [raw]\n", "(top level)", "outputs must contain 'oci'"),
        ("outputs: [oci, vmdk]\n", "outputs.1", "oci"),
        ("postprocess: [{name: x}]\n", "postprocess.0", "exactly one of 'script' or 'file'"),
        ("variants: {}\n", "variants", "at least one variant"),
    ],
)
def test_bad_values(tmp_path: Path, snippet: str, key: str, needle: str) -> None:
    text = MINIMAL
    top = snippet.split(":", 1)[0]
    text = text.split("sources:")[0] + snippet + "packages: [hello]\n" if top == "sources" else text + snippet
    problems = errors(tmp_path, text)
    assert any(f":{key}:" in p and needle in p for p in problems), problems
    assert all(p.startswith(str(tmp_path / "m.yaml") + ":") for p in problems)


def test_duplicate_key(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, MINIMAL + "suite: sid\n")
    assert ":8:suite: duplicate key" in problem


def test_not_a_mapping(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, "- a\n- b\n")
    assert "must be a YAML mapping" in problem


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        manifest.load(tmp_path / "nope.yaml")


def test_version_number_becomes_string(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL.replace('version: "13"', "version: 13")))
    assert m.version == "13"


def test_digest_is_stable_and_content_based(tmp_path: Path) -> None:
    a = manifest.load(write(tmp_path, MINIMAL))
    b = manifest.load(write(tmp_path, "# a comment\n" + MINIMAL))
    c = manifest.load(write(tmp_path, MINIMAL.replace("hello]", "hello, vim]")))
    assert a.digest() == b.digest() != c.digest()
