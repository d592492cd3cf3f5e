"""Pure logic of publish: the keep policy and delta source, the publish record, where keys come from."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.publish import History, KeySpec
from deb_bootc_compose.publish.history import plan_ref

A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)


def test_first_publish_has_no_delta_and_keeps_the_commit() -> None:
    p = plan_ref("r", [], A, keep=3)
    assert (p.previous, p.kept, p.dropped, p.deltas) == (None, (A,), (), ())


def test_update_deltas_from_the_previous_and_drops_beyond_keep() -> None:
    p = plan_ref("r", [C, B, A], D, keep=3)
    assert p.previous == C
    assert p.kept == (D, C, B) and p.dropped == (A,)
    assert p.deltas == ((C, D), (B, C))


def test_republishing_the_head_changes_nothing() -> None:
    p = plan_ref("r", [B, A], B, keep=3)
    assert p.kept == (B, A) and p.dropped == ()
    assert p.previous == A  # the delta an interrupted publish may not have finished


def test_republishing_an_older_commit_moves_it_to_the_front() -> None:
    p = plan_ref("r", [C, B, A], A, keep=2)
    assert (p.previous, p.kept, p.dropped) == (C, (A, C), (B,))


def test_keep_must_be_positive() -> None:
    with pytest.raises(PublishError, match="--keep 0"):
        plan_ref("r", [], A, keep=0)


def test_history_round_trip_and_summary_metadata(tmp_path: Path) -> None:
    path = tmp_path / "deb-bootc" / "history.json"
    assert History.load(path).refs == {}
    h = History({"x/amd64/base": [B, A], "x/arm64/base": [C]}, "1" * 64, "2" * 64)
    h.write(path)
    back = History.load(path)
    assert back == h
    text = h.summary_metadata()
    assert text.startswith("@a{sas} ")
    assert ast.literal_eval(text.split(" ", 1)[1]) == {"x/amd64/base": [B, A], "x/arm64/base": [C]}
    assert History().summary_metadata() == "@a{sas} {}"


@pytest.mark.parametrize("content", ['{"format": 2, "refs": {}}', '{"format": 1, "refs": {"r": ["nothex"]}}',
                                     "not json", '{"format": 1}',
                                     '{"format": 1, "refs": {"a\'] evil": []}}'])
def test_a_damaged_record_is_a_clear_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "history.json"
    path.write_text(content)
    with pytest.raises(PublishError, match="unreadable publish record"):
        History.load(path)


def test_a_linked_record_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere.json").write_text('{"format": 1, "refs": {}}')
    (tmp_path / "history.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(PublishError, match="not a regular file"):
        History.load(tmp_path / "history.json")


def test_keys_from_options_and_environment(tmp_path: Path) -> None:
    f = tmp_path / "k.asc"
    assert KeySpec.from_options([f], None, None, env={}) == KeySpec(files=(f,))
    assert KeySpec.from_options(None, tmp_path, ["ABC"], env={}) == KeySpec(homedir=tmp_path, key_ids=("ABC",))
    assert KeySpec.from_options(None, None, None, env={"DEB_BOOTC_GPG_KEY": str(f)}) == KeySpec(files=(f,))
    env = {"DEB_BOOTC_GPG_HOMEDIR": str(tmp_path), "DEB_BOOTC_GPG_KEY_ID": "A1, B2"}
    assert KeySpec.from_options(None, None, None, env=env) == KeySpec(homedir=tmp_path, key_ids=("A1", "B2"))
    # the command line wins over the environment; each half of homedir/key id may come from either
    assert KeySpec.from_options([f], None, None, env=env) == KeySpec(files=(f,))
    assert KeySpec.from_options(None, None, ["C3"], env=env) == KeySpec(homedir=tmp_path, key_ids=("C3",))
    with pytest.raises(PublishError, match="go together"):  # a key id on the command line: not the env's key file
        KeySpec.from_options(None, None, ["C3"], env={"DEB_BOOTC_GPG_KEY": str(f)})


@pytest.mark.parametrize(("files", "homedir", "ids", "match"), [
    (None, None, None, "no signing key"),
    ([Path("k")], Path("h"), None, "not both"),
    (None, Path("h"), None, "go together"),
    (None, None, ["X"], "go together"),
])
def test_keys_usage_errors(files: list[Path] | None, homedir: Path | None, ids: list[str] | None, match: str) -> None:
    with pytest.raises(PublishError, match=match):
        KeySpec.from_options(files, homedir, ids, env={})
