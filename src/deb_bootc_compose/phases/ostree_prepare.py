"""ostree-prepare: turn the mmdebstrap tree into an OSTree-ready tree (container form: /etc at the top).

Order matters (see docs/compose.md and the notes it cites):
sources/hostname → toplevel symlinks → groups/users → files → postprocess scripts → image defaults
(SSH host keys, root, locale, machine-id, /etc/default/grub, kernel args) → prepare-root.conf → dracut
initramfs in /usr/lib/modules/$kver → /boot emptied → dpkg/debconf databases to /usr/lib/sysimage →
/var to tmpfiles.d → API filesystems emptied → lint.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from deb_bootc_compose import lint, treeops
from deb_bootc_compose.aptconfig import PrivateApt
from deb_bootc_compose.phases.base import ComposeError, Phase, VariantState
from debsandbox.commands import CommandError

PREPARE_ROOT_CONF = "[sysroot]\nreadonly = true\n\n[composefs]\nenabled = no\n"
TOPLEVEL = {
    "home": "var/home",
    "root": "var/roothome",
    "opt": "var/opt",
    "srv": "var/srv",
    "mnt": "var/mnt",
}
AUTOVAR = "usr/lib/tmpfiles.d/deb-bootc-autovar.conf"
SYSIMAGE_DPKG = "usr/lib/sysimage/dpkg"
SYSIMAGE_DEBCONF = "usr/lib/sysimage/debconf"
# files under these /var paths are shipped (copied at boot from /usr/share/factory when missing)
KEEP_VAR_FILES = ("var/home/", "var/roothome/", "var/opt/", "var/srv/", "var/usrlocal/")
SSH_KEYGEN_UNIT = """[Unit]
Description=Generate SSH host keys at first boot (deb-bootc-compose images ship none)
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key
Before=ssh.service sshd.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
"""


def _tmpfiles_escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace(" ", "\\x20")


class OstreePreparePhase(Phase):
    name = "ostree-prepare"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            if vs.tree is None:
                raise ComposeError(f"{vs.variant}/{vs.arch}: no rootfs tree to prepare")
            self.prepare(vs)

    # ---- the steps ----
    def prepare(self, vs: VariantState) -> None:
        assert vs.tree is not None
        t = vs.tree
        label = f"{vs.variant}/{vs.arch}"
        self.progress(f"{label}: apt sources, hostname, toplevel symlinks")
        self._host_files(t, vs)
        self._toplevel(t)
        self._users(t)
        self._files(t)
        self._postprocess(t, label)
        self.progress(f"{label}: image defaults (no SSH host keys, root locked, locale, machine-id)")
        self._defaults(t)
        kver = self._kernel(t, label)
        vs.kernel_version = kver
        self.progress(f"{label}: dracut --no-hostonly --add ostree for {kver}")
        self._initramfs(t, kver, label)
        self.progress(f"{label}: dpkg database to /{SYSIMAGE_DPKG}, /var to tmpfiles.d")
        self._sysimage(t)
        self._autovar(t)
        self._api_dirs(t)
        problems = lint.check(t, container_form=True)
        if problems:
            raise ComposeError(
                f"{label}: the prepared tree breaks {len(problems)} rule(s):\n  " + "\n  ".join(map(str, problems))
            )
        self.progress(f"{label}: tree ready (kernel {kver}), lint clean")

    def _in_tree(self, t: Path, argv: list[str], **kw: object) -> None:
        env = {"SOURCE_DATE_EPOCH": str(self.ctx.source_date_epoch)}
        treeops.in_tree(t, argv, log=self.log_path, env=env, cancel=self.ctx.cancel, **kw)  # type: ignore[arg-type]

    def _host_files(self, t: Path, vs: VariantState) -> None:
        # mmdebstrap copied the host's; neither belongs in an image
        (t / "etc" / "hostname").unlink(missing_ok=True)
        resolv = t / "etc" / "resolv.conf"
        if resolv.is_file() and not resolv.is_symlink():
            resolv.write_text("")
        # apt sources: the manifest's, not the compose's local repository
        m = self.ctx.manifest
        apt_root = self.ctx.target.apt_root(PrivateApt.key_for(m, vs.arch))
        (t / "etc" / "apt" / "sources.list").unlink(missing_ok=True)
        keyrings = t / "etc" / "apt" / "keyrings"
        stanzas = []
        for i, src in enumerate(m.sources):
            signed = ""
            key = apt_root / "keys" / f"source{i}.gpg"
            if src.trusted:
                signed = "Trusted: yes\n"
            elif src.key or src.orchestrator is not None:
                if key.is_file():
                    keyrings.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(key, keyrings / f"compose-source{i}.gpg")
                    signed = f"Signed-By: /etc/apt/keyrings/compose-source{i}.gpg\n"
            else:
                signed = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            stanzas.append(
                f"Types: deb\nURIs: {src.repo_url()}\nSuites: {src.repo_suite(m.suite)}\n"
                f"Components: {' '.join(src.components)}\n{signed}"
            )
        (t / "etc" / "apt" / "sources.list.d").mkdir(parents=True, exist_ok=True)
        (t / "etc" / "apt" / "sources.list.d" / "compose.sources").write_text("\n".join(stanzas))

    def _toplevel(self, t: Path) -> None:
        (t / "var").mkdir(exist_ok=True)
        for name, dest in TOPLEVEL.items():
            self._move_to_symlink(t, name, dest, f"{dest}")
        self._move_to_symlink(t, "usr/local", "var/usrlocal", "../var/usrlocal")
        media = t / "media"
        if media.is_dir() and not media.is_symlink():
            shutil.rmtree(media)
        media.unlink(missing_ok=True)
        media.symlink_to("run/media")
        (t / "sysroot").mkdir(exist_ok=True)
        ostree = t / "ostree"
        if not ostree.is_symlink():
            if ostree.exists():
                shutil.rmtree(ostree)
            ostree.symlink_to("sysroot/ostree")

    @staticmethod
    def _move_to_symlink(t: Path, name: str, dest: str, target: str) -> None:
        src = t / name
        d = t / dest
        if src.is_symlink():
            return
        d.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            st = src.stat()
            os.chmod(d, stat.S_IMODE(st.st_mode))
            os.chown(d, st.st_uid, st.st_gid)
            for child in src.iterdir():
                shutil.move(str(child), str(d / child.name))
            src.rmdir()
        src.symlink_to(target)

    def _users(self, t: Path) -> None:
        m = self.ctx.manifest
        for g in m.groups:
            argv = ["groupadd", *(["--gid", str(g.gid)] if g.gid is not None else []), g.name]
            self._run_admin(t, argv, f"group {g.name}")
        for u in m.users:
            argv = ["useradd", "--create-home", "--home-dir", f"/var/home/{u.name}", "--shell", u.shell]
            if u.uid is not None:
                argv += ["--uid", str(u.uid)]
            if u.gid is not None:
                argv += ["--gid", str(u.gid)]
            else:
                argv += ["--user-group"]
            if u.groups:
                argv += ["--groups", ",".join(u.groups)]
            if u.gecos:
                argv += ["--comment", u.gecos]
            argv += ["--password", u.password_hash or "!", u.name]
            self._run_admin(t, argv, f"user {u.name}")
            if u.ssh_authorized_keys:
                ssh = t / "var" / "home" / u.name / ".ssh"
                ssh.mkdir(mode=0o700, exist_ok=True)
                keys = ssh / "authorized_keys"
                keys.write_text("\n".join(u.ssh_authorized_keys) + "\n")
                keys.chmod(0o600)
                home_st = (t / "var" / "home" / u.name).stat()
                for p in (ssh, keys):
                    os.chown(p, home_st.st_uid, home_st.st_gid)

    def _run_admin(self, t: Path, argv: list[str], what: str) -> None:
        try:
            self._in_tree(t, argv, capture=True)
        except CommandError as exc:
            raise ComposeError(f"manifest {what}: {' '.join(argv[:1])} failed:\n{exc.tail}") from exc

    def _files(self, t: Path) -> None:
        m = self.ctx.manifest
        for i, f in enumerate(m.files):
            dest = t / f.path.lstrip("/")
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.is_dir():
                raise ComposeError(f"manifest files[{i}]: {f.path} exists in the tree as a directory or symlink")
            if f.source is not None:
                src = Path(f.source) if Path(f.source).is_absolute() else self.ctx.manifest_path.parent / f.source
                if not src.is_file():
                    raise ComposeError(f"manifest files[{i}]: source {src} does not exist (relative to the manifest)")
                shutil.copyfile(src, dest)
            else:
                assert f.content is not None
                dest.write_text(f.content)
            os.chmod(dest, int(f.mode, 8))
            uid, gid = self._ids(t, f.owner, f.group, f"files[{i}] ({f.path})")
            os.chown(dest, uid, gid)

    @staticmethod
    def _ids(t: Path, owner: str, group: str, what: str) -> tuple[int, int]:
        def lookup(db: str, name: str) -> int:
            if name.isdigit():
                return int(name)
            for line in (t / "etc" / db).read_text().splitlines():
                parts = line.split(":")
                if parts[0] == name:
                    return int(parts[2])
            raise ComposeError(f"manifest {what}: no {'user' if db == 'passwd' else 'group'} {name!r} in the image")

        return lookup("passwd", owner), lookup("group", group)

    def _postprocess(self, t: Path, label: str) -> None:
        m = self.ctx.manifest
        for i, s in enumerate(m.postprocess):
            name = s.name or (s.file if s.file else f"postprocess[{i}]")
            if s.file is not None:
                path = Path(s.file) if Path(s.file).is_absolute() else self.ctx.manifest_path.parent / s.file
                if not path.is_file():
                    raise ComposeError(f"manifest postprocess[{i}]: script file {path} does not exist")
                script = path.read_bytes()
            else:
                assert s.script is not None
                script = s.script.encode()
            self.progress(f"{label}: postprocess script {name} (sandboxed, no network)")
            self.check_cancelled()
            done = treeops.in_tree(
                t, ["/bin/sh", "-e", "-s"], stdin=script, log=self.log_path, check=False, capture=True,
                env={"SOURCE_DATE_EPOCH": str(self.ctx.source_date_epoch)}, cancel=self.ctx.cancel, timeout=1800,
            )
            if done.returncode != 0:
                out = done.output.strip().splitlines()
                shown = "\n    ".join(out[-40:]) or "(no output)"
                raise ComposeError(
                    f"{label}: postprocess script {name} failed with exit code {done.returncode}; its output:\n"
                    f"    {shown}"
                )

    def _defaults(self, t: Path) -> None:
        m = self.ctx.manifest
        # SSH host keys are made at first boot, never baked into the image
        ssh = t / "etc" / "ssh"
        if ssh.is_dir():
            for k in ssh.glob("ssh_host_*"):
                k.unlink()
        if (t / "usr" / "sbin" / "sshd").exists():
            unit = t / "usr/lib/systemd/system/deb-bootc-ssh-keygen.service"
            unit.write_text(SSH_KEYGEN_UNIT)
            wants = t / "usr/lib/systemd/system/multi-user.target.wants"
            wants.mkdir(parents=True, exist_ok=True)
            link = wants / unit.name
            link.unlink(missing_ok=True)
            link.symlink_to(f"../{unit.name}")
            for svc in ("ssh.service", "sshd.service"):
                dropin = t / f"usr/lib/systemd/system/{svc}.d"
                dropin.mkdir(parents=True, exist_ok=True)
                (dropin / "deb-bootc-keygen.conf").write_text(
                    f"[Unit]\nWants={unit.name}\nAfter={unit.name}\n"
                )
        # root locked
        shadow = t / "etc" / "shadow"
        lines = shadow.read_text().splitlines()
        for i, line in enumerate(lines):
            parts = line.split(":")
            if parts[0] == "root" and not parts[1].startswith(("!", "*")):
                parts[1] = "!" + parts[1]
                lines[i] = ":".join(parts)
            elif parts[0] == "root" and parts[1] == "*":
                parts[1] = "!*"
                lines[i] = ":".join(parts)
        shadow.write_text("\n".join(lines) + "\n")
        # locale
        (t / "etc" / "locale.conf").write_text(f"LANG={m.locale}\n")
        (t / "etc" / "default").mkdir(exist_ok=True)
        (t / "etc" / "default" / "locale").write_text(f"LANG={m.locale}\n")
        # machine-id: empty, systemd makes one at first boot
        (t / "etc" / "machine-id").write_text("")
        (t / "var" / "lib" / "dbus" / "machine-id").unlink(missing_ok=True)
        # /etc/default/grub: ostree's 15_ostree silently does nothing without it
        grub = t / "etc" / "default" / "grub"
        if not grub.exists() and (t / "usr/share/grub/default/grub").is_file():
            shutil.copyfile(t / "usr/share/grub/default/grub", grub)
        # kernel arguments, in bootc's kargs.d format (the disk installer also reads the manifest)
        if m.kernel_args:
            kargs = t / "usr/lib/bootc/kargs.d"
            kargs.mkdir(parents=True, exist_ok=True)
            (kargs / "00-compose.toml").write_text(
                "kargs = [" + ", ".join(f'"{a}"' for a in m.kernel_args) + "]\n"
            )
        # systemd's own tmpfiles for /home and /srv warn about our symlinks (cosmetic): override them
        (t / "etc" / "tmpfiles.d").mkdir(exist_ok=True)
        (t / "etc" / "tmpfiles.d" / "home.conf").write_text("# /home and /srv are symlinks into /var (OSTree)\n")

    def _kernel(self, t: Path, label: str) -> str:
        modules = t / "usr" / "lib" / "modules"
        kvers = sorted(p.name for p in modules.iterdir() if (t / "boot" / f"vmlinuz-{p.name}").exists()) if (
            modules.is_dir()
        ) else []
        if not kvers:
            raise ComposeError(f"{label}: no kernel in the tree (no /boot/vmlinuz-* with /usr/lib/modules/*)")
        if len(kvers) > 1:
            raise ComposeError(f"{label}: several kernels installed ({', '.join(kvers)}); an image boots one")
        return kvers[0]

    def _initramfs(self, t: Path, kver: str, label: str) -> None:
        conf = t / "usr/lib/ostree/prepare-root.conf"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(PREPARE_ROOT_CONF)
        moddir = t / "usr/lib/modules" / kver
        try:
            self._in_tree(
                t,
                ["dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
                 f"/usr/lib/modules/{kver}/initramfs.img"],
                timeout=1800,
            )
        except CommandError as exc:
            raise ComposeError(f"{label}: dracut failed (log {self.log_path}):\n{exc.tail}") from exc
        os.chmod(moddir / "initramfs.img", 0o644)
        vmlinuz = moddir / "vmlinuz"
        boot_kernel = t / "boot" / f"vmlinuz-{kver}"
        # newer kernel packages (sid) ship usr/lib/modules/$kver/vmlinuz themselves, /boot's is a link to it
        if not (vmlinuz.is_file() and not vmlinuz.is_symlink()):
            real = boot_kernel
            if boot_kernel.is_symlink():  # resolve inside the tree, never on the host
                points_to = os.readlink(boot_kernel)
                real = t / points_to.lstrip("/") if points_to.startswith("/") else t / "boot" / points_to
            vmlinuz.unlink(missing_ok=True)
            shutil.copyfile(real, vmlinuz)
        os.chmod(vmlinuz, 0o644)
        for child in (t / "boot").iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        for pattern in ("vmlinuz*", "initrd.img*"):
            for link in t.glob(pattern):
                link.unlink()

    def _sysimage(self, t: Path) -> None:
        for var_rel, usr_rel in (("var/lib/dpkg", SYSIMAGE_DPKG), ("var/cache/debconf", SYSIMAGE_DEBCONF)):
            src = t / var_rel
            dest = t / usr_rel
            if src.is_symlink() or not src.is_dir():
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.exists():
                shutil.rmtree(dest)
            shutil.move(str(src), str(dest))
            src.symlink_to(os.path.relpath(dest, src.parent))
        # dpkg's lock and backup files are state, not content
        for junk in ("lock", "lock-frontend", "triggers/Lock", "status-old", "diversions-old", "statoverride-old"):
            (t / SYSIMAGE_DPKG / junk).unlink(missing_ok=True)
        for junk in ("config.dat-old", "templates.dat-old", "passwords.dat"):
            (t / SYSIMAGE_DEBCONF / junk).unlink(missing_ok=True)

    def _autovar(self, t: Path) -> None:
        var = t / "var"
        lines = ["# generated by deb-bootc-compose: the image's /var, recreated at boot (OSTree ships /var empty)"]
        factory = t / "usr/share/factory"
        dropped = []
        for root, dirs, files in os.walk(var):
            rel_root = os.path.relpath(root, t)
            for d in sorted(dirs):
                p = Path(root) / d
                rel = f"{rel_root}/{d}"
                st = p.lstat()
                if stat.S_ISLNK(st.st_mode):
                    kind = "L+" if rel == "var/lib/dpkg" else "L"
                    lines.append(f"{kind} /{_tmpfiles_escape(rel)} - - - - {os.readlink(p)}")
                else:
                    lines.append(
                        f"d /{_tmpfiles_escape(rel)} {stat.S_IMODE(st.st_mode):04o} {st.st_uid} {st.st_gid} - -"
                    )
            dirs[:] = [d for d in sorted(dirs) if not (Path(root) / d).is_symlink()]
            for f in sorted(files):
                p = Path(root) / f
                rel = f"{rel_root}/{f}"
                st = p.lstat()
                if stat.S_ISLNK(st.st_mode):
                    # L+: the dpkg database link must win over anything found there
                    kind = "L+" if rel == "var/lib/dpkg" else "L"
                    lines.append(f"{kind} /{_tmpfiles_escape(rel)} - - - - {os.readlink(p)}")
                elif rel.startswith(KEEP_VAR_FILES) and stat.S_ISREG(st.st_mode):
                    dest = factory / rel
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(p, dest)
                    os.chown(dest, st.st_uid, st.st_gid)
                    lines.append(
                        f"C /{_tmpfiles_escape(rel)} - - - - /usr/share/factory/{_tmpfiles_escape(rel)}"
                    )
                else:
                    dropped.append(rel)
        autovar = t / AUTOVAR
        autovar.parent.mkdir(parents=True, exist_ok=True)
        autovar.write_text("\n".join(lines) + "\n")
        if dropped:
            self._write_log(f"/var files not shipped ({len(dropped)}): " + " ".join(dropped))
        # empty /var, but keep /var/lib/dpkg -> ../../usr/lib/sysimage/dpkg: tmpfiles never runs in a container
        for child in list(var.iterdir()):
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()
        (var / "lib").mkdir()
        (var / "lib" / "dpkg").symlink_to(f"../../{SYSIMAGE_DPKG}")

    @staticmethod
    def _api_dirs(t: Path) -> None:
        for name in ("dev", "proc", "sys", "run", "tmp"):
            d = t / name
            if d.is_dir() and not d.is_symlink():
                for child in list(d.iterdir()):
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
            else:
                d.mkdir()
        os.chmod(t / "tmp", 0o1777)
