#!/usr/bin/env python3
"""Proves the Dockerfile's stages would succeed on a machine without a Docker engine.

The build stage is replayed instruction by instruction in a scratch directory standing for
the image's filesystem: WORKDIR, COPY (only what the context offers, minus .dockerignore) and
RUN (with this machine's Rust toolchain, the same major version as the base image). So a
`cargo build --locked` that would fail in the image fails here, for the same reason.

BuildKit's automatic platform ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and
their BUILD* twins) are this machine's platform, as a `docker build` here would set them (no
--platform: the native one); an ARG with a default takes it; any other ARG is left to the
environment (as `--build-arg NAME` with no value would take it). A FROM's --platform is
accepted when it names $TARGETPLATFORM or $BUILDPLATFORM, which are both this machine here.

The final stage's inputs are then checked (every `COPY --from` source exists in the replayed
build stage, every context source exists), and the binary is run the way the image runs it:
inside a minimal Debian 12 userland (debootstrap, cached under target/), as the distroless
nonroot user, with `--version` and `check-config`.

usage: replay-dockerfile.py [--no-userland]
"""

import fnmatch
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRATCH = ROOT / "target" / "dockerfile-replay"
ROOTFS = ROOT / "target" / "debian12-rootfs"
NONROOT = "65532:65532"


def platform_args():
    """BuildKit's automatic platform ARGs for a build on this machine, for this machine."""
    machine = platform.machine().lower()
    arch, variant = {
        "x86_64": ("amd64", ""), "amd64": ("amd64", ""),
        "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
        "armv7l": ("arm", "v7"),
    }.get(machine, (machine, ""))
    plat = f"linux/{arch}" + (f"/{variant}" if variant else "")
    out = {}
    for side in ("TARGET", "BUILD"):
        out.update({f"{side}PLATFORM": plat, f"{side}OS": "linux", f"{side}ARCH": arch,
                    f"{side}VARIANT": variant})
    return out


PLATFORM_ARGS = platform_args()


def substitute(text, values):
    """$NAME and ${NAME} replaced, as Dockerfile variables in FROM."""
    return re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: values.get(m.group(1), ""), text)


def sbin(tool):
    """A tool from /usr/sbin, which is not on every user's PATH."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin") or tool


def fail(msg):
    sys.exit(f"replay-dockerfile: {msg}")


def instructions(text):
    """(stage name, instruction, arguments) per logical line."""
    stage, out, line = None, [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        if s.endswith("\\"):
            line += s[:-1] + " "
            continue
        line += s
        op, _, args = line.partition(" ")
        op = op.upper()
        if op == "FROM":
            parts = args.split()
            flags = [p for p in parts if p.startswith("--")]
            parts = [p for p in parts if not p.startswith("--")]
            for flag in flags:
                name, _, value = flag[2:].partition("=")
                if name != "platform":
                    fail(f"FROM {args}: flag --{name} is not replayable")
                if value not in ("$TARGETPLATFORM", "${TARGETPLATFORM}", "$BUILDPLATFORM",
                                 "${BUILDPLATFORM}"):
                    fail(f"FROM {args}: --platform={value} is neither $TARGETPLATFORM nor "
                         "$BUILDPLATFORM, so this machine cannot stand for it")
            stage = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else f"stage{len(out)}"
            print(f"==> [{stage}] FROM {substitute(parts[0], PLATFORM_ARGS)} as "
                  f"{PLATFORM_ARGS['TARGETPLATFORM']} (this machine)", flush=True)
        out.append((stage, op, args.strip()))
        line = ""
    return out


def ignored(rel, patterns):
    return any(rel == p or rel.startswith(p + "/") or fnmatch.fnmatch(rel, p) for p in patterns)


def dockerignore():
    path = ROOT / ".dockerignore"
    if not path.exists():
        return []
    return [l.strip().rstrip("/") for l in path.read_text().splitlines()
            if l.strip() and not l.startswith("#")]


def copy_from_context(srcs, dst, workdir, fs_root, patterns):
    dest = resolve(dst, workdir, fs_root)
    for src in srcs:
        rel = src.rstrip("/")
        if ignored(rel, patterns):
            fail(f"COPY {src}: excluded by .dockerignore")
        origin = ROOT / rel
        if not origin.exists():
            fail(f"COPY {src}: not in the build context")
        if origin.is_dir():
            # Like Docker: a directory's contents go into the destination.
            shutil.copytree(origin, dest, dirs_exist_ok=True,
                            ignore=lambda d, names: [n for n in names if ignored(
                                str((Path(d) / n).relative_to(ROOT)), patterns)])
        else:
            target = dest / origin.name if dst.endswith("/") or len(srcs) > 1 else dest
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def resolve(path, workdir, fs_root):
    p = Path(path)
    return fs_root / p.relative_to("/") if p.is_absolute() else workdir / p


def replay_build(stage, steps, patterns):
    fs_root = SCRATCH / stage
    fs_root.mkdir(parents=True, exist_ok=True)
    workdir = fs_root
    env = dict(os.environ)
    for op, args in steps:
        if op == "WORKDIR":
            workdir = resolve(args, workdir, fs_root)
            workdir.mkdir(parents=True, exist_ok=True)
            # The image starts empty; only cargo's target directory is kept between replays,
            # as a cache (it is not an input of any instruction).
            for child in workdir.iterdir():
                if child.name != "target":
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
        elif op == "COPY":
            parts = shlex.split(args)
            if any(p.startswith("--from") for p in parts):
                fail(f"build stage COPY --from is not replayable: {args}")
            copy_from_context(parts[:-1], parts[-1], workdir, fs_root, patterns)
        elif op == "RUN":
            print(f"==> [{stage}] RUN {args}", flush=True)
            r = subprocess.run(["sh", "-ec", args], cwd=workdir, env=env)
            if r.returncode != 0:
                fail(f"RUN failed with exit code {r.returncode}: {args}")
        elif op == "ENV":
            k, _, v = args.partition("=")
            env[k.strip()] = v.strip().strip('"')
        elif op == "ARG":
            name, eq, default = args.partition("=")
            name = name.strip()
            if name in PLATFORM_ARGS:
                env[name] = PLATFORM_ARGS[name]
                print(f"==> [{stage}] ARG {name}={env[name]} (this machine's platform)", flush=True)
            elif eq:
                env.setdefault(name, default.strip().strip('"'))
        elif op == "LABEL":
            pass
        else:
            fail(f"instruction {op} is not replayable in the build stage")
    return fs_root


def check_final(steps, built, patterns):
    user, entrypoint, copied = None, None, {}
    for op, args in steps:
        if op == "COPY":
            parts = shlex.split(args)
            frm = [p.split("=", 1)[1] for p in parts if p.startswith("--from=")]
            srcs = [p for p in parts[:-1] if not p.startswith("--")]
            for src in srcs:
                if frm:
                    origin = built[frm[0]] / Path(src).relative_to("/")
                    if not origin.exists():
                        fail(f"COPY --from={frm[0]} {src}: the build stage did not produce it")
                else:
                    if ignored(src, patterns) or not (ROOT / src).exists():
                        fail(f"COPY {src}: not in the build context")
                    origin = ROOT / src
                copied[parts[-1]] = origin
        elif op == "USER":
            user = args
        elif op == "ENTRYPOINT":
            entrypoint = shlex.split(args.replace("[", "").replace("]", "").replace(",", " "))[0]
    if entrypoint not in copied:
        fail(f"ENTRYPOINT {entrypoint} is not a file the final stage copies")
    print(f"==> final stage: {len(copied)} file(s) present, entrypoint {entrypoint}, user {user}")
    return copied, entrypoint


def userland(copied, entrypoint):
    """Runs the binary in a minimal Debian 12 (what distroless cc-debian12 is built from)."""
    if not (ROOTFS / "usr/bin").exists():
        print("==> debootstrap a minimal Debian 12 userland (cached in target/)", flush=True)
        tmp = ROOTFS.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        r = subprocess.run([sbin("debootstrap"), "--variant=minbase", "bookworm", str(tmp),
                            "http://deb.debian.org/debian"], stdout=subprocess.DEVNULL)
        if r.returncode != 0:
            fail("debootstrap failed")
        tmp.rename(ROOTFS)
    # Each run starts from the pristine userland (hard links: instant, no space), so nothing an
    # earlier Dockerfile copied, or a directory it made, can hide what this one lacks.
    root = ROOTFS.with_name(ROOTFS.name + "-run")
    shutil.rmtree(root, ignore_errors=True)
    subprocess.run(["cp", "-al", str(ROOTFS), str(root)], check=True)

    def place(dst):
        """A fresh file at dst: unlinked first, never written through a link to the cache."""
        path = root / Path(dst).relative_to("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        return path

    for dst, origin in copied.items():
        shutil.copy2(origin, place(dst))
    config = place("/etc/s3-reconciler/check.toml")
    config.write_text(
        '[source]\nbucket = "source-s3-bucket"\nregion = "ap-northeast-2"\n'
        '[target]\nbucket = "destination-s3-bucket"\nregion = "ap-northeast-2"\n'
        '[purge]\nenabled = true\n'
        'queue_url = "https://sqs.ap-northeast-2.amazonaws.com/111111111111/deletes"\n')
    for args in (["--version"], ["--config", "/etc/s3-reconciler/check.toml", "check-config"]):
        cmd = [sbin("chroot"), f"--userspec={NONROOT}", str(root), entrypoint, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
        if r.returncode != 0:
            fail(f"{' '.join(args)} in Debian 12 exited {r.returncode}: {r.stderr.strip()}")
        print(f"==> Debian 12, user {NONROOT}: {entrypoint} {' '.join(args)}: ok "
              f"({r.stdout.splitlines()[0] if r.stdout else ''})")


def main():
    text = (ROOT / "Dockerfile").read_text()
    patterns = dockerignore()
    stages = {}
    for stage, op, args in instructions(text):
        if stage is None:
            # Before the first FROM: only ARGs, for FROM lines; the platform ones are built in.
            if op != "ARG":
                fail(f"{op} before the first FROM")
            continue
        stages.setdefault(stage, []).append((op, args))
    names = list(stages)
    built = {}
    for name in names[:-1]:
        built[name] = replay_build(name, stages[name][1:], patterns)
    copied, entrypoint = check_final(stages[names[-1]][1:], built, patterns)
    if "--no-userland" not in sys.argv:
        userland(copied, entrypoint)


if __name__ == "__main__":
    main()
