"""Manifest schema: the minimal manifest works as written; every error names file:line:key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from basecomposes import make_base

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


def test_examples_load(tmp_path: Path) -> None:
    found = sorted(EXAMPLES.rglob("*.yaml"))  # examples/debian-atomic, examples/particle-os/manifest too
    assert len(found) >= 7
    atomic = yaml.safe_load((EXAMPLES / "debian-atomic/debian-atomic.yaml").read_text())
    base = make_base(tmp_path, atomic)  # a derived example is loaded on a (synthetic) Debian Atomic compose
    for path in found:
        data = yaml.safe_load(path.read_text())
        if "base" in data:
            data["base"]["compose"] = str(base)
            path = tmp_path / path.name
            path.write_text(yaml.safe_dump(data))
        m = manifest.load(path)
        assert m.name and m.sources
        if "base" in data:
            assert m.derived_from is not None and "htop" in m.variant_packages("base")
            assert "openssh-server" in m.variant_packages("base")  # the base's


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
    (tmp_path / "two.sh").write_text("echo two\n")
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
        ("outputs: [raw]\n", "outputs", "outputs must contain 'oci'"),
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


# ---- values that end up in the image, in apt's files or in refs: strict patterns ----
@pytest.mark.parametrize(
    ("snippet", "key", "needle"),
    [
        ("kernel_args: [\"console=ttyS0\\nroot=/dev/sda1\"]\n", "kernel_args", "without spaces, quotes"),
        ("kernel_args: ['quiet\"']\n", "kernel_args", "without spaces, quotes"),
        ("kernel_args: [\"a='b c'\"]\n", "kernel_args", "one argument per entry"),
        ("locale: \"C.UTF-8\\nLC_ALL=x\"\n", "locale", "must look like C.UTF-8"),
        ("locale: 'en_US\"'\n", "locale", "no spaces, quotes or newlines"),
        ("version: '13+1'\nref: 'os/{version}'\n", "ref", "the OSTree ref 'os/13+1' (for base/amd64) is not valid"),
        ("ref: 'debian/{suite}/{arch}/x y'\n", "ref", "does not make an OSTree ref"),
        ("ref: '../{arch}'\n", "ref", "does not make an OSTree ref"),
        ("variants: {'a+b': {}}\n", "variants.a+b", "is not valid: a ref holds only"),
        ("groups: [{name: 'wh eel'}]\n", "groups.0.name", "not a valid group name"),
        ("groups: [{name: '1000'}]\n", "groups.0.name", "not a valid group name"),
        ("users: [{name: bob, groups: ['sudo,root']}]\n", "users.0.groups", "not a valid group name"),
        ("users: [{name: bob, gecos: 'x:0:0'}]\n", "users.0.gecos", "must not hold"),
        ("users: [{name: bob, shell: 'bash'}]\n", "users.0.shell", "absolute path"),
        ("users: [{name: bob, ssh_authorized_keys: [\"ssh-ed25519 A\\nssh-rsa B\"]}]\n",
         "users.0.ssh_authorized_keys", "one key per entry"),
        ("users: [{name: bob, password_hash: \"$6$x:0:0\"}]\n", "users.0.password_hash", "must not hold"),
        ("files: [{path: /etc/x, content: y, owner: 'ro ot'}]\n", "files.0", "not a valid user name"),
        ("files: [{path: \"/etc/a\\nb\", content: y}]\n", "files.0", "newlines or control characters"),
        ("oci: {name: 'Debian Bootc'}\n", "oci.name", "not an image name"),
        ("oci: {tag: 'a:b'}\n", "oci.tag", "not an image tag"),
        ("build: {target: '../../x'}\n", "build.target", "not a target name"),
    ],
)
def test_strict_patterns(tmp_path: Path, snippet: str, key: str, needle: str) -> None:
    text = MINIMAL.replace('version: "13"\n', "") if snippet.startswith("version:") else MINIMAL
    problems = errors(tmp_path, text + snippet)
    assert any(f":{key}:" in p and needle in p for p in problems), problems


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("- url: \"http://deb.debian.org/debian\\nTrusted: yes\"\n    components: [main]\n", "must not hold spaces"),
        ("- url: http://deb.debian.org/debian\n    suite: ../../etc\n", "not a suite name"),
        ("- url: http://deb.debian.org/debian\n    components: ['main contrib']\n", "not component names"),
        ("- orchestrator: {url: 'http://hub', tag: '../../x'}\n", "not a tag name"),
    ],
)
def test_sources_refuse_injection(tmp_path: Path, source: str, needle: str) -> None:
    text = MINIMAL.split("sources:")[0] + "sources:\n  " + source + "packages: [hello]\n"
    problems = errors(tmp_path, text)
    assert any(":sources.0" in p and needle in p for p in problems), problems


# ---- files the manifest copies into the image ----
def test_files_resolve_under_the_manifest_directory(tmp_path: Path) -> None:
    mdir = tmp_path / "m"
    (mdir / "files").mkdir(parents=True)
    (mdir / "files" / "motd").write_text("hi\n")
    (mdir / "post.sh").write_text("true\n")
    (tmp_path / "outside").write_text("host\n")
    (mdir / "files" / "escape").symlink_to(tmp_path / "outside")
    (mdir / "files" / "inside").symlink_to("motd")
    good = MINIMAL + "files: [{path: /etc/motd, source: files/motd}, {path: /etc/x, source: files/inside}]\n" \
        "postprocess: [{file: post.sh}]\n"
    m = manifest.load(write(mdir, good))
    assert m.files[0].source == "files/motd"
    path = mdir / "m.yaml"
    cases = [
        (f"files: [{{path: /etc/motd, source: {tmp_path / 'outside'}}}]\n", "files.0.source",
         "must be a path relative to the manifest's directory"),
        ("files: [{path: /etc/motd, source: ../outside}]\n", "files.0.source", "without '..'"),
        ("files: [{path: /etc/motd, source: files/../../outside}]\n", "files.0.source", "without '..'"),
        ("files: [{path: /etc/motd, source: files/escape}]\n", "files.0.source", "leads out of the manifest's "
         "directory"),
        ("files: [{path: /etc/motd, source: files/missing}]\n", "files.0.source", "is not a file"),
        ("postprocess: [{file: /etc/shadow}]\n", "postprocess.0.file", "need --allow-host-paths"),
        ("postprocess: [{file: files/escape}]\n", "postprocess.0.file", "through a symlink"),
    ]
    for snippet, key, needle in cases:
        path.write_text(MINIMAL + snippet)
        with pytest.raises(ManifestError) as info:
            manifest.load(path)
        (problem,) = info.value.problems
        assert problem.startswith(f"{path}:8:{key}: ") and needle in problem, problem
    # --allow-host-paths lets them through (the file must still exist)
    path.write_text(MINIMAL + f"files: [{{path: /etc/motd, source: {tmp_path / 'outside'}}}, "
                    "{path: /etc/b, source: ../outside}, {path: /etc/c, source: files/escape}]\n")
    assert len(manifest.load(path, allow_host_paths=True).files) == 3
    # a copy of the manifest without its files (metadata/manifest.yaml) still loads when files are not checked
    path.write_text(MINIMAL + "files: [{path: /etc/motd, source: files/gone}]\n")
    assert manifest.load(path, check_files=False).files[0].source == "files/gone"


def test_compose_cli_refuses_host_paths(tmp_path: Path) -> None:
    """The compose command line: the manifest error before anything is created; --allow-host-paths passes."""
    from compose_helpers import run_cli

    # an unreachable mirror ends the compose that --allow-host-paths lets start, at once
    m = write(tmp_path, MINIMAL.replace("http://deb.debian.org/debian", "http://127.0.0.1:9/debian") +
              "files: [{path: /etc/motd, source: /etc/shadow}]\n")
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t")])
    assert run.returncode == 2
    assert f"{m}:8:files.0.source: '/etc/shadow' must be a path relative to the manifest's directory" in run.stderr
    assert not (tmp_path / "t").exists()
    run = run_cli(["--config", str(m), "--target-dir", str(tmp_path / "t"), "--allow-host-paths"])
    assert run.returncode == 1 and "files.0.source" not in run.stderr
    assert "http://127.0.0.1:9/debian (trixie)" in run.stderr


# ---- YAML aliases ----
def test_billion_laughs_is_refused_quickly(tmp_path: Path) -> None:
    import resource
    import time

    doc = MINIMAL + 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for n in "bcdefghi":
        doc += f"{n}: &{n} [" + ",".join([f"*{prev}"] * 9) + "]\n"
        prev = n
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    (problem,) = errors(tmp_path, doc)
    assert time.monotonic() - start < 2
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < 50_000  # KiB
    assert problem.startswith(f"{tmp_path / 'm.yaml'}:")
    assert "aliases (*name) repeat more than 10000 values: a 'billion laughs' document? refused" in problem


def test_recursive_alias_is_refused(tmp_path: Path) -> None:
    (problem,) = errors(tmp_path, MINIMAL + "x: &x [*x]\n")
    assert f"{tmp_path / 'm.yaml'}:8: values nested more than 64 deep" in problem


def test_a_few_aliases_are_fine(tmp_path: Path) -> None:
    m = manifest.load(write(tmp_path, MINIMAL.replace("packages: [", "packages: &p [") +
                            "variants: {base: {}, devel: {add: *p}}\n"))
    assert m.variants["devel"].add == m.packages
