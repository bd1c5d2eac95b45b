# syntax=docker/dockerfile:1
# The pgark container image: built with the Rust toolchain, run on a minimal base (glibc,
# libgcc, CA certificates) as a non-root user, with pgark as the entrypoint.
#
#   docker build -t pgark .
#   docker run --rm -e PGARK_SOURCE=postgres://... -e PGARK_DEST=s3://... pgark dump
#
# Where no registry is reachable, scripts/build-image.sh assembles the same image from scratch
# with buildah (Debian's package) from a locally built binary.

FROM docker.io/library/rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin pgark \
    && strip target/release/pgark

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/pgark /usr/local/bin/pgark
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["/usr/local/bin/pgark"]
CMD ["--help"]
