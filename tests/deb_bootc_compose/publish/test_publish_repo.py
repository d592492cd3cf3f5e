"""publish on small real composes (real OSTree commits, real OpenPGP keys), served over HTTP on loopback and
pulled by a real ``ostree`` client that verifies commit and summary signatures."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from debarchive_helpers import gpg_agents
from pubhelpers import REF, KeyFiles, client, make_key, ostree, pull, snapshot, tiny_compose

from deb_bootc_compose import metadata as md
from deb_bootc_compose.cli import main
from deb_bootc_compose.errors import PublishError
from deb_bootc_compose.paths import ComposePaths
from deb_bootc_compose.publish import HISTORY_FILE, History, KeySpec, publish
from deb_bootc_compose.publish.repo import SUMMARY_STAGE
from httpserve import free_port, serve_directory
from nginxserve import nginx

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "import sys; from deb_bootc_compose.cli import main; sys.exit(main(sys.argv[1:]))"]
BIG = os.urandom(1 << 20)  # one incompressible MiB shared by every version: a delta must not carry it again


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, KeyFiles]:
    where = tmp_path_factory.mktemp("keys")
    return {name: make_key(where, name) for name in ("good", "other")}


@pytest.fixture
def composes(tmp_path: Path) -> list[Path]:
    """Three versions of one ref: the same MiB, a file that changes."""
    target = tmp_path / "target"
    return [tiny_compose(target, n, {"usr/lib/big": BIG, "usr/lib/small": f"version {n}\n".encode() * n,
                                     "usr/etc/os-release": f"VERSION_ID={n}\n".encode()}) for n in (1, 2, 3)]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    dest = tmp_path / "pub"
    dest.mkdir()
    with serve_directory(dest) as url:
        yield dest, url


def compose_commit(compose: Path) -> str:
    return md.load_ostree(ComposePaths.at(compose).ostree_json)[0].commit


def cli(*args: object) -> int:
    return main(["publish", *map(str, args)])


def test_publish_sign_serve_and_verify(composes: list[Path], served: tuple[Path, str], keys: dict[str, KeyFiles],
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest, url = served
    assert cli(composes[0], "--to", dest, "--gpg-key", keys["good"].secret) == 0
    out = capsys.readouterr().out
    assert f"{REF}: " in out and "published, signed" in out
    for name in ("config", "summary", "summary.sig", "objects", "refs"):
        assert (dest / name).exists(), name
    assert "mode=archive" in (dest / "config").read_text()
    commit = ostree(dest, "rev-parse", REF)
    assert commit == compose_commit(composes[0])  # the compose's checksum, not a new commit
    repo = client(tmp_path / "ok", url, keys["good"].public)
    done = pull(repo)
    assert done.returncode == 0, done.stderr
    assert ostree(repo, "rev-parse", f"origin:{REF}") == commit
    shown = ostree(repo, "show", commit)
    assert "Good signature" in shown and keys["good"].fingerprint[-16:] in shown
    # the signed summary tells clients the published history
    assert commit in ostree(repo, "remote", "summary", "origin")


def test_other_key_and_unsigned_are_refused(composes: list[Path], served: tuple[Path, str],
                                            keys: dict[str, KeyFiles], tmp_path: Path) -> None:
    dest, url = served
    publish(composes[0], dest, KeySpec(files=(keys["other"].secret,)))
    refused = pull(client(tmp_path / "wrong", url, keys["good"].public))
    assert refused.returncode != 0
    assert "signature" in refused.stderr.lower() or "gpg" in refused.stderr.lower(), refused.stderr
    # the same repository without any signature (a plain pull-local, summary unsigned): refused as well
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    subprocess.run(["ostree", "init", f"--repo={unsigned}", "--mode=archive"], check=True)
    commit = ostree(dest, "rev-parse", REF)
    ostree(unsigned, "pull-local", str(composes[0].parent / "ostree" / "repo"), commit)
    ostree(unsigned, "refs", f"--create={REF}", commit)
    ostree(unsigned, "summary", "-u")
    with serve_directory(unsigned) as plain_url:
        repo = client(tmp_path / "plain", plain_url, keys["good"].public)
        done = pull(repo)
        assert done.returncode != 0
        assert "signature" in done.stderr.lower() or "gpg" in done.stderr.lower(), done.stderr
        # even with summary verification off, the commit itself must carry a signature
        ostree(repo, "remote", "delete", "origin")
        ostree(repo, "remote", "add", "--set=gpg-verify=true", "--set=gpg-verify-summary=false",
               f"--gpg-import={keys['good'].public}", "origin", plain_url)
        done = pull(repo)
        assert done.returncode != 0 and "signature" in done.stderr.lower(), done.stderr


def test_publish_twice_changes_nothing(composes: list[Path], served: tuple[Path, str], keys: dict[str, KeyFiles],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    dest, _ = served
    spec = KeySpec(files=(keys["good"].secret,))
    assert publish(composes[0], dest, spec).changed
    before = snapshot(dest)
    again = publish(composes[0], dest, spec)
    assert not again.changed and not again.refs[0].new and not again.refs[0].signed
    assert snapshot(dest) == before  # no new file, same summary and signature, not even a new mtime
    assert cli(composes[0], "--to", dest, "--gpg-key", keys["good"].secret) == 0
    assert "nothing changed" in capsys.readouterr().out
    assert snapshot(dest) == before


def test_updates_get_deltas_and_the_keep_policy(composes: list[Path], served: tuple[Path, str],
                                                keys: dict[str, KeyFiles], tmp_path: Path) -> None:
    dest, url = served
    spec = KeySpec(files=(keys["good"].secret,))
    commits = []
    repo = client(tmp_path / "c", url, keys["good"].public)
    for i, compose in enumerate(composes):
        result = publish(compose, dest, spec, keep=2)
        commits.append(result.refs[0].commit)
        assert result.refs[0].delta_from == (commits[i - 1] if i else None)
        done = pull(repo)
        assert done.returncode == 0, done.stderr
        assert ostree(repo, "rev-parse", f"origin:{REF}") == commits[i]
    history = History.load(dest / HISTORY_FILE)
    assert history.refs[REF] == [commits[2], commits[1]]  # keep=2: v1 pruned
    assert not (dest / "objects" / commits[0][:2] / f"{commits[0][2:]}.commit").exists()
    deltas = ostree(dest, "static-delta", "list").split()
    assert deltas == [f"{commits[1]}-{commits[2]}"]  # the v1→v2 delta went with v1
    # v2 stays pullable by checksum (a client may go back to it); the summary lists the history, signed
    older = client(tmp_path / "older", url, keys["good"].public)
    done = subprocess.run(["ostree", f"--repo={older}", "pull", "origin", commits[1]], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = ostree(older, "remote", "summary", "origin")
    assert f"deb-bootc.history: {{'{REF}': ['{commits[2]}', '{commits[1]}']}}" in summary


def test_update_pull_uses_the_delta(composes: list[Path], served: tuple[Path, str], keys: dict[str, KeyFiles],
                                    tmp_path: Path) -> None:
    dest, url = served
    spec = KeySpec(files=(keys["good"].secret,))
    publish(composes[0], dest, spec)
    repo = client(tmp_path / "c", url, keys["good"].public)
    assert pull(repo).returncode == 0
    publish(composes[1], dest, spec)
    done = subprocess.run(["ostree", f"--repo={repo}", "pull", "--require-static-deltas", "origin", REF],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout
    assert "Good signature" in ostree(repo, "show", ostree(repo, "rev-parse", f"origin:{REF}"))


def test_two_keys_for_a_rotation(composes: list[Path], served: tuple[Path, str], keys: dict[str, KeyFiles],
                                 tmp_path: Path) -> None:
    dest, url = served
    assert cli(composes[0], "--to", dest, "--gpg-key", keys["good"].secret, "--gpg-key", keys["other"].secret) == 0
    for name in ("good", "other"):  # a client that trusts either key pulls
        done = pull(client(tmp_path / name, url, keys[name].public))
        assert done.returncode == 0, done.stderr
    # v2 published with the old key, then again with both: the delta is made again with both signatures, so a
    # machine on v1 that trusts only the new key updates through it
    assert cli(composes[1], "--to", dest, "--gpg-key", keys["good"].secret) == 0
    assert cli(composes[1], "--to", dest, "--gpg-key", keys["good"].secret, "--gpg-key", keys["other"].secret) == 0
    machine = client(tmp_path / "machine", url, keys["other"].public)
    v1 = compose_commit(composes[0])
    assert subprocess.run(["ostree", f"--repo={machine}", "pull", "origin", f"{REF}@{v1}"]).returncode == 0
    done = subprocess.run(["ostree", f"--repo={machine}", "pull", "--require-static-deltas", "origin", REF],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_gpg_homedir_and_key_id(composes: list[Path], served: tuple[Path, str], keys: dict[str, KeyFiles],
                                tmp_path: Path) -> None:
    dest, url = served
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(["gpg", "--batch", "--import", str(keys["good"].secret)], env=env, check=True, capture_output=True)
    try:
        env_only = {"DEB_BOOTC_GPG_HOMEDIR": str(home), "DEB_BOOTC_GPG_KEY_ID": keys["good"].fingerprint}
        done = subprocess.run([*CLI, "publish", str(composes[0]), "--to",
                               str(dest)], env={**os.environ, **env_only}, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert pull(client(tmp_path / "c", url, keys["good"].public)).returncode == 0
        with pytest.raises(PublishError, match="no usable secret signing key"):
            publish(composes[1], dest, KeySpec(homedir=home, key_ids=(keys["other"].fingerprint,)))
    finally:
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], env=env, check=False)


def test_bad_inputs_leave_dir_untouched(composes: list[Path], tmp_path: Path, keys: dict[str, KeyFiles],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "pub"
    good = keys["good"].secret
    publish(composes[0], dest, KeySpec(files=(good,)))
    before = snapshot(dest)
    unfinished = tiny_compose(tmp_path / "t2", 7, {"f": b"x"}, status="STARTED")
    cases: list[tuple[list[object], str]] = [
        ([unfinished, "--to", dest, "--gpg-key", good], "not FINISHED"),
        ([tmp_path / "nowhere", "--to", dest, "--gpg-key", good], "no such compose"),
        ([composes[1], "--to", dest, "--gpg-key", keys["good"].public], "no OpenPGP secret signing key"),
        ([composes[1], "--to", dest, "--gpg-key", tmp_path / "missing.asc"], "no such file"),
        ([composes[1], "--to", dest], "no signing key"),
        ([composes[1], "--to", dest, "--gpg-key", good, "--keep", "0"], "--keep 0"),
    ]
    # a compose whose commit is gone from its repository
    gone = tiny_compose(tmp_path / "t3", 8, {"f": b"y"})
    repo = gone.parent / "ostree" / "repo"
    for p in (repo / "objects").glob("??/*.commit"):
        p.unlink()
    cases.append(([gone, "--to", dest, "--gpg-key", good], "is not in"))
    for args, message in cases:
        capsys.readouterr()
        assert cli(*args) == 2, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert snapshot(dest) == before, args
    # DIR that is something else: refused, not overwritten
    other = tmp_path / "other"
    other.mkdir()
    (other / "precious").write_text("mine")
    assert cli(composes[1], "--to", other, "--gpg-key", good) == 2
    assert "neither empty nor an OSTree repository" in capsys.readouterr().err
    assert [p.name for p in other.iterdir()] == ["precious"]
    # an archive repository publish did not make (its commits would be pruned): refused
    foreign = composes[0].parent / "ostree" / "repo"
    before = snapshot(foreign)
    assert cli(composes[1], "--to", foreign, "--gpg-key", good) == 2
    assert "did not make" in capsys.readouterr().err
    assert snapshot(foreign) == before


def test_concurrent_publish_is_refused(composes: list[Path], tmp_path: Path, keys: dict[str, KeyFiles]) -> None:
    from debsandbox.locks import flock

    dest = tmp_path / "pub"
    publish(composes[0], dest, KeySpec(files=(keys["good"].secret,)))
    before = snapshot(dest)
    with flock(dest / ".deb-bootc-publish.lock", keep_file=True):
        with pytest.raises(PublishError, match="another process") as info:
            publish(composes[1], dest, KeySpec(files=(keys["good"].secret,)))
        assert info.value.untouched  # exit code 2
    assert snapshot(dest) == before


def wait_for_home(proc: subprocess.Popen[bytes], timeout: float = 60) -> Path | None:
    """The private GnuPG home the publish process ``proc`` holds the lock of (None: it ended first)."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        try:
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/tmp/dbc-gpg-") and target.endswith("/.publish.lock"):
                    return Path(target).parent
        except OSError:
            pass
        time.sleep(0.01)
    return None


def test_kill_9_mid_publish_leaves_a_repo_clients_pull(composes: list[Path], served: tuple[Path, str],
                                                        keys: dict[str, KeyFiles], tmp_path: Path) -> None:
    """Kill the publish of v2 at several moments: clients pull a verified commit every time; the next publish
    finishes the job."""
    dest, url = served
    good = keys["good"].secret
    publish(composes[0], dest, KeySpec(files=(good,)))
    v1 = ostree(dest, "rev-parse", REF)
    left_behind: set[Path] = set()
    # each round starts a publish, waits until it holds its private GnuPG home (the keys are being checked: the
    # repository work follows), lets it run a little longer each time, and kills its whole process group
    for n, delay in enumerate((0.0, 0.1, 0.2, 0.3, 0.45, 0.6)):
        proc = subprocess.Popen([*CLI, "publish", str(composes[1]), "--to",
                                 str(dest), "--gpg-key", str(good)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
        home = wait_for_home(proc)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        if home is not None and home.exists():
            left_behind.add(home)
        assert (dest / "summary.sig").is_file(), delay  # never a summary without its signature (signing takes time)
        repo = client(tmp_path / f"c{n}", url, keys["good"].public)
        done = pull(repo)
        assert done.returncode == 0, (delay, done.stderr)
        assert ostree(repo, "rev-parse", f"origin:{REF}") in (v1, compose_commit(composes[1]))
    result = publish(composes[1], dest, KeySpec(files=(good,)))
    v2 = result.refs[0].commit
    assert ostree(dest, "rev-parse", REF) == v2
    assert not (dest / SUMMARY_STAGE).exists()  # a killed publish's staging directory is gone
    assert History.load(dest / HISTORY_FILE).refs[REF] == [v2, v1]
    done = pull(client(tmp_path / "final", url, keys["good"].public))
    assert done.returncode == 0, done.stderr
    assert not publish(composes[1], dest, KeySpec(files=(good,))).changed
    # the killed publishes' private GnuPG homes (and agents) were removed by the next publish
    assert left_behind, "no publish was killed while it held its private GnuPG home"
    assert not [p for p in left_behind if p.exists()]
    assert not [cmd for cmd, home in gpg_agents() if Path(home) in left_behind]


def nginx_location(dest: Path) -> str:
    """The ``location /debian-atomic/`` block of docs/publishing.md's nginx configuration, aliased to ``dest``."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "publishing.md").read_text()
    start = text.index("    location /debian-atomic/ {")
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "}":
            break
    return text[start:end + 1].replace("/srv/www/debian-atomic/", f"{dest}/")


def test_served_by_nginx_with_the_documented_config(composes: list[Path], keys: dict[str, KeyFiles],
                                                    tmp_path: Path) -> None:
    dest = tmp_path / "pub"
    publish(composes[0], dest, KeySpec(files=(keys["good"].secret,)))
    with nginx(dest, free_port(), tmp_path / "nginx", server=nginx_location(dest)) as base:
        url = f"{base}/debian-atomic"
        with urllib.request.urlopen(f"{url}/config", timeout=5) as resp:
            assert b"mode=archive" in resp.read()
        with urllib.request.urlopen(f"{url}/summary", timeout=5) as resp:
            assert resp.headers["Cache-Control"] == "no-cache"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(f"{url}/.deb-bootc-publish.lock", timeout=5)
        assert denied.value.code == 403
        done = pull(client(tmp_path / "c", url, keys["good"].public))
        assert done.returncode == 0, done.stderr
