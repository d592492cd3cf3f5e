"""deb-bootc's import of a bootc OCI image (what ``deb-bootc switch docker://…`` does after skopeo copied it):
the session compose's own OCI layout, its layers applied in order by the client's code with Debian's
layers rules, committed as the client commits it, has exactly the content of the compose's OSTree commit."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from compose_helpers import SessionCompose

from deb_bootc_compose.disk import source

pytestmark = pytest.mark.integration
CLIENT = Path(__file__).resolve().parents[2] / "packaging" / "deb-bootc"
if str(CLIENT) not in sys.path:
    sys.path.insert(0, str(CLIENT))

from deb_bootc import image  # noqa: E402


def sh(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr[-3000:]}"
    return done.stdout


def content_checksum(repo: Path, commit: str) -> str:
    out = sh("ostree", "show", f"--repo={repo}", commit)
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("ContentChecksum:"))


def test_imported_image_has_the_compose_commits_content(minimal_compose: SessionCompose, tmp_path: Path) -> None:
    compose = minimal_compose.topdir
    recorded = source.from_compose(compose)
    layout = compose / "compose/base/amd64/oci/layout"
    store = tmp_path / "store"
    # what skopeo copy leaves in /var/lib/deb-bootc/images (the compose's layout is only read)
    reference = "docker://registry.example.org/debian-bootc/base:13"
    tag = image.layout_tag(reference)
    sh("skopeo", "copy", f"oci:{layout}:13", f"oci:{store}:{tag}")
    img = image.read(str(store), tag, reference)
    assert img.labels.get(image.VERSION_LABEL) == "13" and len(img.layers) > 1
    work = tmp_path / "work"
    work.mkdir()
    root = Path(image.unpack(img, str(work)))
    assert (root / "usr/etc/passwd").is_file() and not (root / "etc").exists()
    repo = tmp_path / "repo"
    sh("ostree", "init", f"--repo={repo}", "--mode=bare")
    imported = sh("ostree", "commit", f"--repo={repo}", "--branch=deb-bootc/image/test", f"--tree=dir={root}",
                  "--no-bindings", f"--add-metadata-string=deb-bootc.image={reference}").strip()
    shutil.rmtree(root)
    sh("ostree", "pull-local", f"--repo={repo}", str(compose.parent / "ostree/repo"), recorded.commit)
    diff = sh("ostree", "diff", f"--repo={repo}", recorded.commit, imported)
    assert diff == "", f"the imported image differs from the compose's commit:\n{diff[:3000]}"
    assert content_checksum(repo, imported) == content_checksum(repo, recorded.commit)
