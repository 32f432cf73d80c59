# syntax=docker/dockerfile:1
# Multi-stage build: a cached dependency layer, then the binary alone into a distroless image
# that runs as a non-root user. The image carries no configuration file: the defaults are
# compiled into the binary (config/default.toml documents them; `s3-reconciler check-config`
# prints the configuration in effect). Mount a TOML file and set S3R_CONFIG, and/or set
# S3R__SECTION__KEY variables.
# `make test` replays the build stage without Docker and runs the binary in a Debian 12
# userland (scripts/replay-dockerfile.py); hadolint lints this file.
#
# Platforms: `docker buildx build --platform linux/amd64,linux/arm64 .` builds an image per
# platform (ECS: ecs-service.yaml's CpuArchitecture, X86_64 or ARM64). The build stage runs on
# the platform it builds for: its FROM has no --platform, which under BuildKit means
# $TARGETPLATFORM (natively on a builder of that architecture, else under QEMU emulation: slower,
# same result). Cross-compiling from $BUILDPLATFORM instead would need, per target, a Rust
# target, a cross linker and a cross C toolchain for the C the AWS SDK's TLS builds
# (aws-lc-sys); building natively needs none of them.

FROM rust:1.95-slim-bookworm AS build
# Set by BuildKit from --platform (amd64, arm64); empty under the legacy builder, which builds
# for its own architecture (dpkg's name for it is the same word).
ARG TARGETARCH
WORKDIR /src
# Dependencies first, so source edits do not rebuild the AWS SDK. The manifest names the
# benchmarks, so their sources come along (nothing here builds them); build.rs stamps the
# revision and date. The first check stops a builder that would run this stage on another
# architecture than the one asked for (and so build the wrong binary).
COPY Cargo.toml Cargo.lock build.rs ./
COPY benches ./benches
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
    && case "${arch}:$(uname -m)" in \
      amd64:x86_64 | arm64:aarch64) ;; \
      *) echo "build stage runs on $(uname -m), the image is for '${arch}'" >&2; exit 1 ;; \
    esac \
    && mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
# The build has no .git: `--build-arg S3R_REVISION=$(git rev-parse --short=12 HEAD)
# --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)` stamp it (build.rs), else the
# revision reads "unknown". Declared here, so a new revision does not rebuild the dependencies.
ARG S3R_REVISION
ARG SOURCE_DATE_EPOCH
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/s3-reconciler /usr/local/bin/s3-reconciler
# The distroless `nonroot` user, numeric so that runAsNonRoot can be verified.
USER 65532:65532
EXPOSE 9090
# Configuration: mount a TOML file and set S3R_CONFIG, and/or S3R__SECTION__KEY variables.
ENTRYPOINT ["/usr/local/bin/s3-reconciler"]
CMD ["run"]
