"""Pure parsers of the client: ostree admin status, GVariant strings, key files, signature reports."""

from __future__ import annotations

import pytest

from deb_bootc import parse

A = "a" * 64
B = "b" * 64
C = "c" * 64

STATUS = f"""\
  debian {C}.0 (staged)
    Version: 3
    origin refspec: debian:debian/trixie/amd64/base
* debian {A}.0
    Version: 2
    Pinned: yes
    origin refspec: debian:debian/trixie/amd64/base
    GPG: Signature made Sat Dec  5 03:41:31 2026 using RSA key ID CE3E02B297FE736E
    GPG: Good signature from "Test Key <t@example.org>"
  debian {B}.1 (rollback)
    origin refspec: deb-bootc/image/registry.example.org-x-latest
"""


def test_admin_status_roles_versions_and_origins() -> None:
    entries = parse.parse_admin_status(STATUS)
    assert [(e.index, e.checksum, e.serial, e.booted, e.flags) for e in entries] == [
        (0, C, 0, False, ["staged"]), (1, A, 0, True, []), (2, B, 1, False, ["rollback"])]
    assert [e.version for e in entries] == ["3", "2", None]
    assert entries[1].pinned and not entries[0].pinned
    assert entries[2].refspec == "deb-bootc/image/registry.example.org-x-latest"


def test_admin_status_without_deployments_and_with_newer_flags() -> None:
    assert parse.parse_admin_status("No deployments.\n") == []
    e = parse.parse_admin_status(f"  debian {A}.2 (staged) (finalization locked)\n")[0]
    assert e.flags == ["staged", "finalization-locked"] and e.serial == 2


@pytest.mark.parametrize(("printed", "value"), [
    ("'1.0'\n", "1.0"),
    ('"{\\"a\\": \\"1\\", \\"b\'c\\": \\"2\\"}"\n', '{"a": "1", "b\'c": "2"}'),
    ("'caf\\u00e9'", "café"),
])
def test_gvariant_strings(printed: str, value: str) -> None:
    assert parse.gvariant_string(printed) == value


@pytest.mark.parametrize("printed", ["uint64 5", "['a']", "'unterminated", "", "__import__('os')"])
def test_gvariant_non_strings_are_refused(printed: str) -> None:
    with pytest.raises((ValueError, SyntaxError)):
        parse.gvariant_string(printed)


def test_keyfile_merges_groups_and_keeps_case() -> None:
    text = '[remote "debian"]\nurl=https://u.example/repo\ngpg-verify=true\ngpgkeypath=/usr/share/k.gpg\n' \
           '[origin]\nrefspec=debian:a/b\n# comment\n[deb-bootc]\nimage=docker://r.example/x:1\n'
    groups = parse.keyfile(text)
    assert groups['remote "debian"']["gpgkeypath"] == "/usr/share/k.gpg"
    assert groups["origin"]["refspec"] == "debian:a/b"
    assert parse.keyfile_bool(groups['remote "debian"'].get("gpg-verify"), False)
    assert parse.keyfile_bool(None, True) and not parse.keyfile_bool("false", True)


def test_refspecs() -> None:
    assert parse.split_refspec("debian:debian/trixie/amd64/base") == ("debian", "debian/trixie/amd64/base")
    assert parse.split_refspec("deb-bootc/image/x") == (None, "deb-bootc/image/x")


SHOW = "commit {c}\nDate:  2026-12-05\n\n    s\n\n"


@pytest.mark.parametrize(("tail", "state"), [
    ("", "unsigned"),
    ("Found 1 signature:\n\n  Signature made Sat Dec 5 using RSA key ID X\n  Good signature from \"K <k@e>\"\n"
     "  Primary key ID X\n  Key expires never\n", "valid"),
    ("Found 1 signature:\n\n  Signature made Sat using RSA key ID X\n  Can't check signature: public key not "
     "found\n", "untrusted"),
    ("Found 2 signatures:\n\n  Good signature from \"K\"\n  BAD signature from \"L\"\n", "invalid"),
    ("Found 1 signature:\n\n  Good signature from \"K\"\n  Key expired Mon 01 Jan\n", "invalid"),
])
def test_signature_reports(tail: str, state: str) -> None:
    assert parse.parse_signatures(SHOW.format(c=A) + tail).state == state


def test_signature_errors_are_told_from_other_failures() -> None:
    assert parse.is_signature_error("error: Commit x: GPG verification enabled, but no signatures found")
    assert parse.is_signature_error("FATA[0000] Source image rejected: A signature was required")
    assert not parse.is_signature_error("error: Server returned HTTP 404")
