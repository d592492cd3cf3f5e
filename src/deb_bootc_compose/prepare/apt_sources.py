"""The image's apt sources: the manifest's (deb822, keys in /etc/apt/keyrings), not the compose's local
repository."""

from __future__ import annotations

from deb_bootc_compose.aptconfig import PrivateApt
from deb_bootc_compose.prepare.base import PrepareJob, Step


def run(job: PrepareJob) -> None:
    t, m = job.tree, job.manifest
    apt_root = job.ctx.target.apt_root(PrivateApt.key_for(m, job.vs.arch))
    t.unlink("etc/apt/sources.list", missing_ok=True)
    stanzas = []
    for i, src in enumerate(m.sources):
        signed = ""
        key = PrivateApt.keyring(apt_root, i)
        if src.trusted:
            signed = "Trusted: yes\n"
        elif src.key or src.orchestrator is not None:
            if key.is_file():
                job.own_dir("etc/apt/keyrings")
                t.write_bytes(f"etc/apt/keyrings/compose-source{i}.gpg", key.read_bytes())
                signed = f"Signed-By: /etc/apt/keyrings/compose-source{i}.gpg\n"
        else:
            signed = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
        stanzas.append(
            f"Types: deb\nURIs: {src.repo_url()}\nSuites: {src.repo_suite(m.suite)}\n"
            f"Components: {' '.join(src.components)}\n{signed}"
        )
    job.own_dir("etc/apt/sources.list.d")
    t.write_text("etc/apt/sources.list.d/compose.sources", "\n".join(stanzas))


STEP = Step("apt-sources", run)
