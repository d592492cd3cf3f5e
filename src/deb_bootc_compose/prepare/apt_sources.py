"""The image's apt sources (deb822, keys in /etc/apt/keyrings): the manifest's ``image_sources``, by default its
sources reachable from elsewhere (never the compose's local repository, a ``file://`` or loopback URL or a
hub's tag repository; :mod:`deb_bootc_compose.imagesources`)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from deb_bootc_compose import imagesources
from deb_bootc_compose.aptconfig import PrivateApt, fetch_key
from deb_bootc_compose.prepare.base import PrepareJob, Step

SOURCES = "etc/apt/sources.list.d/compose.sources"


def _keyring(job: PrepareJob, es: imagesources.EffectiveSource, index: int, apt_root: Path) -> str | None:
    """The Signed-By path of one source, its keyring written into the image (None for a trusted source)."""
    src = es.source
    if src.trusted:
        return None
    if not src.key:
        return imagesources.DEBIAN_KEYRING
    gathered = PrivateApt.keyring(apt_root, es.from_manifest) if es.from_manifest is not None else None
    if gathered is not None and gathered.is_file():  # the key gather fetched for this source
        name, data = f"compose-source{es.from_manifest}.gpg", gathered.read_bytes()
    else:
        name = f"compose-source{es.from_manifest}.gpg" if es.from_manifest is not None else f"image-source{index}.gpg"
        with tempfile.TemporaryDirectory(dir=job.log_path.parent) as tmp:
            dest = Path(tmp) / "key.gpg"
            fetch_key(src.key, job.ctx.manifest_path.parent, dest, f"image_sources[{index}] ({src.url})")
            data = dest.read_bytes()
    job.own_dir("etc/apt/keyrings")
    job.tree.write_bytes(f"etc/apt/keyrings/{name}", data, mode=0o644)
    return f"/etc/apt/keyrings/{name}"


def run(job: PrepareJob) -> None:
    t, m = job.tree, job.manifest
    apt_root = job.ctx.target.apt_root(PrivateApt.key_for(m, job.vs.arch))
    t.unlink("etc/apt/sources.list", missing_ok=True)
    chosen, left_out = imagesources.effective(m)
    if left_out:
        job.write_log("image sources: left out (not reachable from elsewhere; set image_sources: to choose): "
                      + ", ".join(left_out))
    stanzas = [imagesources.stanza(es.source, m.suite, _keyring(job, es, i, apt_root))
               for i, es in enumerate(chosen)]
    job.own_dir("etc/apt/sources.list.d")
    if stanzas:
        t.write_text(SOURCES, "\n".join(stanzas))
    else:
        t.unlink(SOURCES, missing_ok=True)
        job.write_log("image sources: none (apt-get in the image has no source until one is added)")


STEP = Step("apt-sources", run)
