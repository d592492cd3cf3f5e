"""The SBOM builder on plain data and small trees: Debian licence names as SPDX expressions, the copyright file
read without following links (a link to a host file, a link out of the doc directory, a FIFO, an oversized
file), the SPDX 2.3 document validated by spdx-tools, byte-stable, its namespace following its content; the
sbom plugin's options; the manifest's ``plugins:`` and ``hooks:`` keys with their errors (file:line:key)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from deb_bootc_compose import yamlmarks
from deb_bootc_compose.hookspec import enabled_plugins
from deb_bootc_compose.manifest import Manifest, ManifestError, parse
from deb_bootc_compose.plugins.sbom import SbomPlugin
from deb_bootc_compose.sbom import copyright as dcopyright
from deb_bootc_compose.sbom import document, licenses

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: sample

Files: *
Copyright: 2020 Someone
License: GPL-2+

Files: lib/*
Copyright: 2021 Other
License: Expat

Files: data/*
Copyright: none
License: public-domain

Files: perl/*
Copyright: 2022 Perl Person
License: GPL-1+ or Artistic

License: public-domain
 The author dedicates this to the public domain.
"""


def validate(doc: dict[str, object], tmp_path: Path) -> list[str]:
    path = tmp_path / "doc.spdx.json"
    path.write_bytes(document.render(doc))
    return [m.validation_message for m in validate_full_spdx_document(parse_file(str(path)))]


def test_debian_short_names_are_spdx_ids() -> None:
    assert licenses.spdx_id("GPL-2+") == "GPL-2.0-or-later"
    assert licenses.spdx_id("GPL-2") == "GPL-2.0-only"
    assert licenses.spdx_id("LGPL-2.1+") == "LGPL-2.1-or-later"
    assert licenses.spdx_id("gpl-3.0+") == "GPL-3.0-or-later"
    assert licenses.spdx_id("Expat") == "MIT" and licenses.spdx_id("BSD-3-clause") == "BSD-3-Clause"
    assert licenses.spdx_id("GPL") is None and licenses.spdx_id("GPL-9+") is None
    valid = {lic.key.lower() for lic in spdx_licensing.known_symbols.values()}
    ids = set(licenses.SHORT_NAMES.values()) | {
        licenses.spdx_id(f"{fam}-{v}{s}") for fam, vs in (("GPL", "123"), ("LGPL", ["2", "2.1", "3"]),
                                                          ("GFDL", ["1.2", "1.3"]), ("AGPL", ["3"]))
        for v in vs for s in ("", "+")}
    assert {i for i in ids if i is None or i.lower() not in valid} == set()
    exceptions = {sym.key for sym in spdx_licensing.known_symbols.values() if sym.is_exception}
    assert set(licenses.EXCEPTIONS.values()) - exceptions == set()


@pytest.mark.parametrize(("synopsis", "expected", "refs"), [
    ("GPL-2+ or Artistic", "GPL-2.0-or-later OR Artistic-1.0-Perl", {}),
    ("GPL-2+ or Artistic-2.0, and BSD-3-clause", "(GPL-2.0-or-later OR Artistic-2.0) AND BSD-3-Clause", {}),
    ("GPL-3+ with Autoconf-data exception", "LicenseRef-GPL-3-plus-with-Autoconf-data-exception",
     {"LicenseRef-GPL-3-plus-with-Autoconf-data-exception": "GPL-3+ with Autoconf-data exception"}),
    ("GPL-2 with Linux-syscall-note exception", "GPL-2.0-only WITH Linux-syscall-note", {}),
    ("public-domain", "LicenseRef-public-domain", {"LicenseRef-public-domain": "public-domain"}),
    ("LGPL-2.1+ and  GPL-2+", "LGPL-2.1-or-later AND GPL-2.0-or-later", {}),
])
def test_synopsis_to_expression(synopsis: str, expected: str, refs: dict[str, str]) -> None:
    expr = licenses.from_synopsis(synopsis)
    assert (expr.text, expr.refs) == (expected, refs)
    # an SPDX expression whose only unknown symbols are the LicenseRefs the document defines
    assert set(spdx_licensing.validate(expr.text).invalid_symbols) == set(refs)


def test_bad_synopses_are_refused() -> None:
    for bad in ("", " , ", "GPL-2+ or , MIT", " or ".join(["MIT"] * 80)):
        with pytest.raises(licenses.LicenseSyntaxError):
            licenses.from_synopsis(bad)


def test_copyright_file_parsed() -> None:
    found = dcopyright.parse(DEP5)
    assert found.expression is not None
    assert found.expression.text == ("(GPL-1.0-or-later OR Artistic-1.0-Perl) AND GPL-2.0-or-later AND "
                                     "LicenseRef-public-domain AND MIT")
    assert found.texts == {"public-domain": "The author dedicates this to the public domain."}
    assert dcopyright.parse("This package was debianized by someone.\n\nIt is GPL.\n").expression is None
    assert "not in the machine-readable format" in dcopyright.parse("Hello\n").note


def make_tree(tmp_path: Path, host: Path) -> Path:
    """A tree whose packages planted links: to a host file, to a host directory, to a sibling, a FIFO."""
    tree = tmp_path / "tree"
    doc = tree / "usr/share/doc"
    for pkg in ("plain", "sibling-target", "linked-file", "fifo", "big"):
        (doc / pkg).mkdir(parents=True)
    (doc / "plain/copyright").write_text(DEP5)
    (doc / "sibling-target/copyright").write_text(DEP5.replace("GPL-2+", "MPL-2.0"))
    (doc / "sibling").symlink_to("sibling-target")
    (doc / "escape").symlink_to(host)  # the whole doc directory is a host directory
    (doc / "climb").symlink_to("../../../../../../" + str(host).lstrip("/"))
    (doc / "linked-file/copyright").symlink_to(host / "copyright")
    os.mkfifo(doc / "fifo/copyright")
    (doc / "big/copyright").write_bytes(DEP5.encode() + b"#" * dcopyright.READ_LIMIT)
    return tree


def test_copyright_never_follows_planted_links(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "copyright").write_text(DEP5.replace("GPL-2+", "host-marker-4711"))
    with dcopyright.DocDir(make_tree(tmp_path, host)) as docs:
        got = {p: dcopyright.package_license(docs, p) for p in
               ("plain", "sibling", "escape", "climb", "linked-file", "fifo", "big", "missing", "../../../etc")}
    assert got["plain"].expression is not None and "GPL-2.0-or-later" in got["plain"].expression.text
    assert got["sibling"].expression is not None and "MPL-2.0" in got["sibling"].expression.text
    assert "from /usr/share/doc/sibling-target" in got["sibling"].note
    for name in ("escape", "climb", "linked-file", "fifo", "big", "missing", "../../../etc"):
        assert got[name].expression is None, name
    assert "not followed" in got["escape"].note and "not followed" in got["climb"].note
    assert "not read" in got["linked-file"].note and "not read" in got["fifo"].note
    assert "larger than" in got["big"].note and got["missing"].note == "no /usr/share/doc/missing"
    assert got["../../../etc"].note == "'../../../etc' is not a package name"
    assert "host-marker" not in repr(got)


def test_doc_directory_itself_a_link_is_refused(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "usr/share").mkdir(parents=True)
    (tmp_path / "hostdoc").mkdir()
    (tree / "usr/share/doc").symlink_to(tmp_path / "hostdoc")
    with pytest.raises(OSError):
        dcopyright.DocDir(tree)


def sample_packages() -> list[document.SbomPackage]:
    gpl = dcopyright.parse(DEP5)
    return [
        document.SbomPackage("hello", "2.10-5", "amd64", "hello", "2.10-5", "a" * 64, "hello_2.10-5_amd64.deb",
                             "http://deb.debian.org/debian/pool/main/h/hello/hello_2.10-5_amd64.deb", gpl.expression),
        document.SbomPackage("libstdc++6", "14.2.0-19", "amd64", "gcc-14", "14.2.0-19", "b" * 64,
                             url="http://127.0.0.1:8080/pool/libstdc++6.deb", license_note="no /usr/share/doc/x"),
        document.SbomPackage("perl-base", "1:5.40.1-6", "amd64", "perl", "5.40.1-6", "c" * 64),
    ]


def sample_image(**kw: object) -> document.SbomImage:
    args: dict[str, object] = dict(name="debian-bootc", version="13", suite="trixie", variant="base", arch="amd64",
                                   source_date_epoch=1764000000, tool="deb-bootc-compose-0.1.0",
                                   ref="debian-bootc/trixie/amd64/base", commit="d" * 64)
    args.update(kw)
    return document.SbomImage(**args)  # type: ignore[arg-type]


def test_document_is_valid_spdx_and_byte_stable(tmp_path: Path) -> None:
    texts = dcopyright.parse(DEP5).texts
    built = document.build(sample_image(), sample_packages(), texts)
    assert validate(built, tmp_path) == []
    doc: dict[str, Any] = json.loads(document.render(built))
    assert document.render(built) == document.render(document.build(sample_image(), list(reversed(sample_packages())),
                                                                   texts))
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["creationInfo"] == {
        "created": "2025-11-24T16:00:00Z", "creators": ["Tool: deb-bootc-compose-0.1.0"]}
    pkgs = {p["name"]: p for p in doc["packages"]}
    hello, libstd, perl = pkgs["hello"], pkgs["libstdc++6"], pkgs["perl-base"]
    assert hello["externalRefs"] == [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                      "referenceLocator": "pkg:deb/debian/hello@2.10-5?arch=amd64&distro=trixie"}]
    assert hello["checksums"] == [{"algorithm": "SHA256", "checksumValue": "a" * 64}]
    assert hello["licenseDeclared"].endswith("AND LicenseRef-public-domain AND MIT")
    assert hello["downloadLocation"].startswith("http://deb.debian.org/")
    assert hello["sourceInfo"] == "built from the Debian source package hello 2.10-5"
    assert perl["externalRefs"][0]["referenceLocator"] == ("pkg:deb/debian/perl-base@1%3A5.40.1-6"
                                                           "?arch=amd64&distro=trixie")
    assert libstd["licenseDeclared"] == "NOASSERTION" and libstd["comment"] == "licence: no /usr/share/doc/x"
    assert libstd["downloadLocation"] == "NOASSERTION"  # SPDX's grammar has no IP addresses
    assert libstd["SPDXID"] == "SPDXRef-Package-deb-libstdcplusplus6-amd64"
    (ref,) = doc["hasExtractedLicensingInfos"]
    assert ref["licenseId"] == "LicenseRef-public-domain" and "public domain" in ref["extractedText"]
    contains = [r["relatedSpdxElement"] for r in doc["relationships"] if r["relationshipType"] == "CONTAINS"]
    assert sorted(contains) == sorted(p["SPDXID"] for p in pkgs.values() if p["name"] != "debian-bootc-base")


def test_namespace_follows_the_content(tmp_path: Path) -> None:
    a = document.build(sample_image(), sample_packages())
    b = document.build(sample_image(), sample_packages()[:2])
    c = document.build(sample_image(namespace_base="https://sbom.example.org/x/"), sample_packages())
    assert str(a["documentNamespace"]).startswith("https://deb-bootc-compose.invalid/spdx/debian-bootc-13-base.amd64-")
    assert a["documentNamespace"] != b["documentNamespace"]
    assert str(c["documentNamespace"]).startswith("https://sbom.example.org/x/debian-bootc-13-base.amd64-")
    assert str(c["documentNamespace"]).rsplit("-", 1)[1] == str(a["documentNamespace"]).rsplit("-", 1)[1]
    assert validate(c, tmp_path) == []


def test_sbom_plugin_options() -> None:
    assert SbomPlugin({}).namespace == document.DEFAULT_NAMESPACE
    assert SbomPlugin({"namespace": "https://sbom.example.org"}).namespace == "https://sbom.example.org"
    for bad in ({"namespace": "ftp://x"}, {"namespace": "https://x/#frag"}, {"colour": "red"}):
        with pytest.raises(ValueError):
            SbomPlugin(bad)


MANIFEST = """name: x
version: "13"
suite: trixie
sources:
  - url: http://deb.debian.org/debian
"""


def parse_text(tmp_path: Path, text: str) -> Manifest:
    path = tmp_path / "m.yaml"
    path.write_text(text)
    return parse(yamlmarks.load(path))  # the Manifest


def test_manifest_hooks_and_plugins(tmp_path: Path) -> None:
    m = parse_text(tmp_path, MANIFEST + "hooks:\n  before: {gather: [\"echo a\", \"echo b\"]}\n"
                                        "  after: {ostree-commit: \"echo one\"}\nplugins: {sbom: false}\n")
    assert m.hooks.commands("before", "gather") == ["echo a", "echo b"]
    assert m.hooks.commands("after", "ostree-commit") == ["echo one"]
    assert m.hooks.commands("after", "gather") == []
    assert enabled_plugins(m.plugins) == {}
    assert enabled_plugins({}) == {"sbom": {}}
    assert enabled_plugins({"sbom": {"namespace": "https://a.b"}, "x": True, "y": False}) == {
        "sbom": {"namespace": "https://a.b"}, "x": {}}


def test_manifest_hook_and_plugin_errors_name_file_and_line(tmp_path: Path) -> None:
    text = (MANIFEST + "hooks:\n  before:\n    gather: [\"echo hi\"]\n    gathr: [\"echo\"]\n"
            "  after:\n    oci: [\"\"]\n  during: {}\nplugins:\n  sbom: true\n  no-such-plugin: {}\n")
    with pytest.raises(ManifestError) as info:
        parse_text(tmp_path, text)
    path = tmp_path / "m.yaml"
    problems = info.value.problems
    assert f"{path}:9:hooks.before.gathr: no phase 'gathr': hooks run before or after one of init, build" in \
        problems[0]
    assert problems[1].startswith(f"{path}:11:hooks.after.oci: oci: ''")
    assert problems[2].startswith(f"{path}:12:hooks.during: unknown key")
    assert problems[3].startswith(f"{path}:15:plugins.no-such-plugin: no plugin 'no-such-plugin' is installed")
    assert len(problems) == 4


def test_extra_files_listed_with_checksums() -> None:
    from deb_bootc_compose import metadata as md

    meta = md.ComposeMeta("x-13-20261205.t.0", "x", "x", "13")
    files = [md.ExtraFileMeta("metadata/sbom/b.amd64.spdx.json", "sbom", "spdx-2.3+json", "sbom", "b", "amd64", 10,
                              "e" * 64)]
    doc = md.extra_files_manifest(meta, files)
    assert doc["header"] == {"type": "deb-bootc-compose.extra-files", "version": "1.0"}
    assert doc["payload"]["files"][0]["path"] == "metadata/sbom/b.amd64.spdx.json"
    json.dumps(doc)
    with pytest.raises(md.MetadataError):
        md.extra_files_manifest(meta, [md.ExtraFileMeta("metadata/x", "k", "f", "p")])
