"""ostree-prepare: turn the mmdebstrap tree into an OSTree-ready tree (container form: /etc at the top).

Order matters (see docs/compose.md and the notes it cites):
sources/hostname → toplevel symlinks → groups/users → files → postprocess scripts → image defaults
(SSH host keys, root, locale, machine-id, /etc/default/grub, kernel args) → prepare-root.conf → dracut
initramfs in /usr/lib/modules/$kver → /boot emptied → dpkg/debconf databases to /usr/lib/sysimage →
/var to tmpfiles.d → API filesystems emptied → lint.
"""

from __future__ import annotations

import fnmatch
import os
import stat
from pathlib import Path

from deb_bootc_compose import lint, treeops
from deb_bootc_compose.aptconfig import PrivateApt
from deb_bootc_compose.errors import ComposeError
from deb_bootc_compose.intree import Tree
from deb_bootc_compose.manifest import resolve_manifest_file
from deb_bootc_compose.phases.base import Phase, VariantState
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
    needed_because = "the OSTree commit and the OCI image are made from the tree it prepares"

    def run(self) -> None:
        for vs in self.ctx.variants:
            self.check_cancelled()
            if vs.tree is None:
                raise ComposeError(f"{vs.variant}/{vs.arch}: no rootfs tree to prepare")
            self.prepare(vs)

    # ---- the steps ----
    def prepare(self, vs: VariantState) -> None:
        assert vs.tree is not None
        label = f"{vs.variant}/{vs.arch}"
        # every host-side edit of the tree resolves its paths inside it (packages may have planted links)
        with Tree(vs.tree) as t:
            try:
                self._prepare(t, vs, label)
            except OSError as exc:
                raise ComposeError(f"{label}: cannot edit the tree: {exc}") from exc

    def _prepare(self, t: Tree, vs: VariantState, label: str) -> None:
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
        # what this phase wrote as the host's root becomes what it means inside the image (root's files, ...)
        treeops.adopt_host_writes(t.root)
        problems = lint.check(t.root, container_form=True)
        if problems:
            raise ComposeError(
                f"{label}: the prepared tree breaks {len(problems)} rule(s):\n  " + "\n  ".join(map(str, problems))
            )
        self.progress(f"{label}: tree ready (kernel {kver}), lint clean")

    def _in_tree(self, t: Tree, argv: list[str], **kw: object) -> None:
        env = {"SOURCE_DATE_EPOCH": str(self.ctx.source_date_epoch)}
        treeops.in_tree(t.root, argv, log=self.log_path, env=env, cancel=self.ctx.cancel, **kw)  # type: ignore[arg-type]

    @staticmethod
    def _own_dir(t: Tree, rel: str) -> None:
        """A directory compose writes its own files into. A link there that leads to a directory of the tree
        is followed (inside the tree); anything else there (a link to a host path, which means nothing in
        the image, a file) is replaced by a directory."""
        if t.lexists(rel) and not t.is_dir(rel):
            t.rmtree(rel)
        t.mkdir(rel, parents=True, exist_ok=True)

    def _host_files(self, t: Tree, vs: VariantState) -> None:
        # mmdebstrap copied the host's; neither belongs in an image
        t.unlink("etc/hostname", missing_ok=True)
        st = t.lstat("etc/resolv.conf")
        if st is not None and stat.S_ISREG(st.st_mode):
            t.write_text("etc/resolv.conf", "")
        # apt sources: the manifest's, not the compose's local repository
        m = self.ctx.manifest
        apt_root = self.ctx.target.apt_root(PrivateApt.key_for(m, vs.arch))
        t.unlink("etc/apt/sources.list", missing_ok=True)
        stanzas = []
        for i, src in enumerate(m.sources):
            signed = ""
            key = PrivateApt.keyring(apt_root, i)
            if src.trusted:
                signed = "Trusted: yes\n"
            elif src.key or src.orchestrator is not None:
                if key.is_file():
                    self._own_dir(t, "etc/apt/keyrings")
                    t.write_bytes(f"etc/apt/keyrings/compose-source{i}.gpg", key.read_bytes())
                    signed = f"Signed-By: /etc/apt/keyrings/compose-source{i}.gpg\n"
            else:
                signed = "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            stanzas.append(
                f"Types: deb\nURIs: {src.repo_url()}\nSuites: {src.repo_suite(m.suite)}\n"
                f"Components: {' '.join(src.components)}\n{signed}"
            )
        self._own_dir(t, "etc/apt/sources.list.d")
        t.write_text("etc/apt/sources.list.d/compose.sources", "\n".join(stanzas))

    def _toplevel(self, t: Tree) -> None:
        t.mkdir("var", exist_ok=True)
        for name, dest in TOPLEVEL.items():
            self._move_to_symlink(t, name, dest, f"{dest}")
        self._move_to_symlink(t, "usr/local", "var/usrlocal", "../var/usrlocal")
        t.rmtree("media", missing_ok=True)
        t.symlink("run/media", "media")
        t.mkdir("sysroot", exist_ok=True)
        if not t.is_symlink("ostree"):
            t.rmtree("ostree", missing_ok=True)
            t.symlink("sysroot/ostree", "ostree")

    @staticmethod
    def _move_to_symlink(t: Tree, src: str, dest: str, target: str) -> None:
        if t.is_symlink(src):
            return
        t.mkdir(dest, parents=True, exist_ok=True)
        st = t.lstat(src)
        if st is not None and stat.S_ISDIR(st.st_mode):
            t.chmod(dest, stat.S_IMODE(st.st_mode))
            t.chown(dest, st.st_uid, st.st_gid)
            for child in t.listdir(src):
                t.rename(f"{src}/{child}", f"{dest}/{child}")
            t.rmdir(src)
        elif st is not None:
            t.unlink(src)
        t.symlink(target, src)

    def _users(self, t: Tree) -> None:
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
                home = f"var/home/{u.name}"
                ssh = f"{home}/.ssh"
                self._own_dir(t, ssh)
                t.chmod(ssh, 0o700)
                t.write_text(f"{ssh}/authorized_keys", "\n".join(u.ssh_authorized_keys) + "\n", 0o600)
                home_st = t.stat(home)
                if home_st is None:
                    raise ComposeError(f"manifest user {u.name}: useradd made no home directory /{home}")
                for p in (ssh, f"{ssh}/authorized_keys"):
                    t.chown(p, home_st.st_uid, home_st.st_gid)

    def _run_admin(self, t: Tree, argv: list[str], what: str) -> None:
        try:
            self._in_tree(t, argv, capture=True)
        except CommandError as exc:
            raise ComposeError(f"manifest {what}: {' '.join(argv[:1])} failed:\n{exc.tail}") from exc

    def _files(self, t: Tree) -> None:
        m = self.ctx.manifest
        for i, f in enumerate(m.files):
            dest = f.path.lstrip("/")
            t.mkdir(os.path.dirname(dest), parents=True, exist_ok=True)
            if t.is_symlink(dest) or t.is_dir(dest):
                raise ComposeError(f"manifest files[{i}]: {f.path} exists in the tree as a directory or symlink")
            if f.source is not None:
                data = self._manifest_file(f.source, f"files[{i}].source")
            else:
                assert f.content is not None
                data = f.content.encode()
            uid, gid = self._ids(t, f.owner, f.group, f"files[{i}] ({f.path})")
            t.write_bytes(dest, data, int(f.mode, 8))
            t.chown(dest, uid, gid)
            t.chmod(dest, int(f.mode, 8))  # chown clears set-id bits

    def _manifest_file(self, value: str, key: str) -> bytes:
        """A file the manifest names, resolved (and checked) the way the manifest's validation did."""
        try:
            path = resolve_manifest_file(self.ctx.manifest_path, value,
                                         allow_host_paths=self.ctx.allow_host_paths)
        except ValueError as exc:
            raise ComposeError(f"manifest {key}: {exc}") from exc
        return path.read_bytes()

    @staticmethod
    def _ids(t: Tree, owner: str, group: str, what: str) -> tuple[int, int]:
        def lookup(db: str, name: str) -> int:
            if name.isdigit():
                return int(name)
            for line in t.read_text(f"etc/{db}", errors="replace").splitlines():
                parts = line.split(":")
                if parts[0] == name:
                    return int(parts[2])
            raise ComposeError(f"manifest {what}: no {'user' if db == 'passwd' else 'group'} {name!r} in the image")

        return lookup("passwd", owner), lookup("group", group)

    def _postprocess(self, t: Tree, label: str) -> None:
        m = self.ctx.manifest
        for i, s in enumerate(m.postprocess):
            name = s.name or (s.file if s.file else f"postprocess[{i}]")
            if s.file is not None:
                script = self._manifest_file(s.file, f"postprocess[{i}].file")
            else:
                assert s.script is not None
                script = s.script.encode()
            self.progress(f"{label}: postprocess script {name} (sandboxed, no network)")
            self.check_cancelled()
            done = treeops.in_tree(
                t.root, ["/bin/sh", "-e", "-s"], stdin=script, log=self.log_path, check=False, capture=True,
                env={"SOURCE_DATE_EPOCH": str(self.ctx.source_date_epoch)}, cancel=self.ctx.cancel, timeout=1800,
            )
            if done.returncode != 0:
                out = done.output.strip().splitlines()
                shown = "\n    ".join(out[-40:]) or "(no output)"
                raise ComposeError(
                    f"{label}: postprocess script {name} failed with exit code {done.returncode}; its output:\n"
                    f"    {shown}"
                )

    def _defaults(self, t: Tree) -> None:
        m = self.ctx.manifest
        # SSH host keys are made at first boot, never baked into the image
        if t.is_dir("etc/ssh"):
            for k in t.listdir("etc/ssh"):
                if fnmatch.fnmatch(k, "ssh_host_*"):
                    t.rmtree(f"etc/ssh/{k}")
        if t.exists("usr/sbin/sshd"):
            unit = "deb-bootc-ssh-keygen.service"
            t.write_text(f"usr/lib/systemd/system/{unit}", SSH_KEYGEN_UNIT)
            wants = "usr/lib/systemd/system/multi-user.target.wants"
            self._own_dir(t, wants)
            t.unlink(f"{wants}/{unit}", missing_ok=True)
            t.symlink(f"../{unit}", f"{wants}/{unit}")
            for svc in ("ssh.service", "sshd.service"):
                dropin = f"usr/lib/systemd/system/{svc}.d"
                self._own_dir(t, dropin)
                t.write_text(f"{dropin}/deb-bootc-keygen.conf", f"[Unit]\nWants={unit}\nAfter={unit}\n")
        # root locked
        lines = t.read_text("etc/shadow").splitlines()
        for i, line in enumerate(lines):
            parts = line.split(":")
            if parts[0] == "root" and not parts[1].startswith(("!", "*")):
                parts[1] = "!" + parts[1]
                lines[i] = ":".join(parts)
            elif parts[0] == "root" and parts[1] == "*":
                parts[1] = "!*"
                lines[i] = ":".join(parts)
        t.write_text("etc/shadow", "\n".join(lines) + "\n")
        # locale
        t.write_text("etc/locale.conf", f"LANG={m.locale}\n")
        self._own_dir(t, "etc/default")
        t.write_text("etc/default/locale", f"LANG={m.locale}\n")
        # machine-id: empty, systemd makes one at first boot
        t.write_text("etc/machine-id", "")
        t.unlink("var/lib/dbus/machine-id", missing_ok=True)
        # /etc/default/grub: ostree's 15_ostree silently does nothing without it
        if not t.exists("etc/default/grub") and t.is_file("usr/share/grub/default/grub"):
            t.copy("usr/share/grub/default/grub", "etc/default/grub")
        # kernel arguments, in bootc's kargs.d format (the disk installer also reads the manifest)
        if m.kernel_args:
            kargs = "usr/lib/bootc/kargs.d"
            self._own_dir(t, kargs)
            t.write_text(f"{kargs}/00-compose.toml", "kargs = [" + ", ".join(f'"{a}"' for a in m.kernel_args) + "]\n")
        # systemd's own tmpfiles for /home and /srv warn about our symlinks (cosmetic): override them
        self._own_dir(t, "etc/tmpfiles.d")
        t.write_text("etc/tmpfiles.d/home.conf", "# /home and /srv are symlinks into /var (OSTree)\n")

    def _kernel(self, t: Tree, label: str) -> str:
        modules = "usr/lib/modules"
        kvers = [k for k in t.listdir(modules) if t.exists(f"boot/vmlinuz-{k}")] if t.is_dir(modules) else []
        if not kvers:
            raise ComposeError(f"{label}: no kernel in the tree (no /boot/vmlinuz-* with /usr/lib/modules/*)")
        if len(kvers) > 1:
            raise ComposeError(f"{label}: several kernels installed ({', '.join(kvers)}); an image boots one")
        return kvers[0]

    def _initramfs(self, t: Tree, kver: str, label: str) -> None:
        self._own_dir(t, "usr/lib/ostree")
        t.write_text("usr/lib/ostree/prepare-root.conf", PREPARE_ROOT_CONF)
        moddir = f"usr/lib/modules/{kver}"
        try:
            self._in_tree(
                t,
                ["dracut", "--no-hostonly", "--reproducible", "--add", "ostree", "--force", "--kver", kver,
                 f"/usr/lib/modules/{kver}/initramfs.img"],
                timeout=1800,
            )
        except CommandError as exc:
            raise ComposeError(f"{label}: dracut failed (log {self.log_path}):\n{exc.tail}") from exc
        t.chmod(f"{moddir}/initramfs.img", 0o644)
        vmlinuz = f"{moddir}/vmlinuz"
        # newer kernel packages (sid) ship usr/lib/modules/$kver/vmlinuz themselves, /boot's is a link to it
        st = t.lstat(vmlinuz)
        if st is None or not stat.S_ISREG(st.st_mode):
            # /boot's kernel, any link resolved inside the tree (never on the host)
            t.copy(f"boot/vmlinuz-{kver}", vmlinuz)
        t.chmod(vmlinuz, 0o644)
        for child in t.listdir("boot"):
            t.rmtree(f"boot/{child}")
        for name in t.listdir(""):
            if fnmatch.fnmatch(name, "vmlinuz*") or fnmatch.fnmatch(name, "initrd.img*"):
                t.rmtree(name)

    def _sysimage(self, t: Tree) -> None:
        for var_rel, usr_rel in (("var/lib/dpkg", SYSIMAGE_DPKG), ("var/cache/debconf", SYSIMAGE_DEBCONF)):
            if not t.is_real_dir(var_rel):
                continue
            t.mkdir(os.path.dirname(usr_rel), parents=True, exist_ok=True)
            t.rmtree(usr_rel, missing_ok=True)
            t.rename(var_rel, usr_rel)
            t.symlink(os.path.relpath(usr_rel, os.path.dirname(var_rel)), var_rel)
        # dpkg's lock and backup files are state, not content
        for junk in ("lock", "lock-frontend", "triggers/Lock", "status-old", "diversions-old", "statoverride-old"):
            t.unlink(f"{SYSIMAGE_DPKG}/{junk}", missing_ok=True)
        for junk in ("config.dat-old", "templates.dat-old", "passwords.dat"):
            t.unlink(f"{SYSIMAGE_DEBCONF}/{junk}", missing_ok=True)

    def _autovar(self, t: Tree) -> None:
        lines = ["# generated by deb-bootc-compose: the image's /var, recreated at boot (OSTree ships /var empty)"]
        dropped = []
        if t.is_symlink("var") or not t.is_dir("var"):
            t.rmtree("var", missing_ok=True)
            t.mkdir("var")
        # the walk runs on the host path of the tree's own /var (a real directory of the tree), never
        # following a link; nothing runs in the tree meanwhile
        var = t.host_path("var")
        ids = treeops.tree_ids()  # the tree's files belong to subordinate ids; tmpfiles lines name inner ones
        for root, dirs, files in os.walk(var):
            rel_root = os.path.normpath(os.path.join("var", os.path.relpath(root, var)))
            for d in sorted(dirs):
                p = Path(root) / d
                rel = f"{rel_root}/{d}"
                st = p.lstat()
                if stat.S_ISLNK(st.st_mode):
                    kind = "L+" if rel == "var/lib/dpkg" else "L"
                    lines.append(f"{kind} /{_tmpfiles_escape(rel)} - - - - {os.readlink(p)}")
                else:
                    lines.append(
                        f"d /{_tmpfiles_escape(rel)} {stat.S_IMODE(st.st_mode):04o} "
                        f"{treeops.inner_uid(ids, st.st_uid)} {treeops.inner_gid(ids, st.st_gid)} - -"
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
                    dest = f"usr/share/factory/{rel}"
                    t.mkdir(os.path.dirname(dest), parents=True, exist_ok=True)
                    t.copy(rel, dest, preserve=True)
                    lines.append(
                        f"C /{_tmpfiles_escape(rel)} - - - - /usr/share/factory/{_tmpfiles_escape(rel)}"
                    )
                else:
                    dropped.append(rel)
        self._own_dir(t, os.path.dirname(AUTOVAR))
        t.write_text(AUTOVAR, "\n".join(lines) + "\n")
        if dropped:
            self._write_log(f"/var files not shipped ({len(dropped)}): " + " ".join(dropped))
        # empty /var, but keep /var/lib/dpkg -> ../../usr/lib/sysimage/dpkg: tmpfiles never runs in a container
        for child in t.listdir("var"):
            t.rmtree(f"var/{child}")
        t.mkdir("var/lib")
        t.symlink(f"../../{SYSIMAGE_DPKG}", "var/lib/dpkg")

    @staticmethod
    def _api_dirs(t: Tree) -> None:
        for name in ("dev", "proc", "sys", "run", "tmp"):
            if t.is_real_dir(name):
                for child in t.listdir(name):
                    t.rmtree(f"{name}/{child}")
            else:
                t.rmtree(name, missing_ok=True)
                t.mkdir(name)
        t.chmod("tmp", 0o1777)
