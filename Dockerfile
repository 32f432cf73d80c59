# syntax=docker/dockerfile:1
# Multi-stage build: a cached dependency layer, then the binary into a distroless image that
# runs as a non-root user with nothing but the binary and its default configuration.
# `make test` replays the build stage without Docker and runs the binary in a Debian 12
# userland (scripts/replay-dockerfile.py); hadolint lints this file.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild the AWS SDK. The manifest names the
# benchmarks, so their sources come along (nothing here builds them).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/s3-reconciler /usr/local/bin/s3-reconciler
COPY config/default.toml /etc/s3-reconciler/default.toml
# The distroless `nonroot` user, numeric so that runAsNonRoot can be verified.
USER 65532:65532
EXPOSE 9090
# Configuration: mount a TOML file and set S3R_CONFIG, and/or S3R__SECTION__KEY variables.
ENTRYPOINT ["/usr/local/bin/s3-reconciler"]
CMD ["run"]
