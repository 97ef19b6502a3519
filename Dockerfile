# roam-notify image: one static binary on `scratch`, with the CA bundle reqwest's rustls
# verifier reads, a non-root user (10001), /data for the SQLite outbox, and a HEALTHCHECK
# that needs no shell or curl. Time-zone data is inside the binary (chrono-tz).
#
#   docker build -t roam-notify .
#   docker run -p 8080:8080 -v roam-data:/data \
#     -e ROAM_NOTIFY_ROAM_API_KEY=... -e ROAM_NOTIFY__SERVER__ADMIN_TOKEN=... \
#     -e ROAM_NOTIFY_CONFIG=/etc/roam-notify/config.toml \
#     -v $PWD/config.toml:/etc/roam-notify/config.toml:ro roam-notify
#
# Where the binary comes from is the build argument BINARY:
#   compile (the default): built here, inside the official Rust image, statically linked
#     with the glibc target's crt-static (no musl target needed). Needs BuildKit (any
#     Docker since 23) and a registry to pull rust:1.95-slim-bookworm from.
#   prebuilt: taken from .docker/out/ in the build context (roam-notify, the CA bundle,
#     an empty data/), which deploy/docker/build fills from the host's toolchain: for a
#     machine that cannot pull images. BuildKit builds only the stages the final one
#     needs, so the Rust image is then never pulled.

ARG BINARY=compile

FROM rust:1.95-slim-bookworm AS compile
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY templates ./templates
COPY benches ./benches
COPY tests ./tests
# `--target` keeps crt-static off the build scripts and proc macros.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    triple="$(uname -m)-unknown-linux-gnu" \
 && RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --bin roam-notify --target "$triple" \
 && mkdir -p /out/data \
 && cp "target/$triple/release/roam-notify" /out/roam-notify \
 && cp /etc/ssl/certs/ca-certificates.crt /out/ca-certificates.crt

FROM scratch AS prebuilt
COPY .docker/out/ /out/

FROM ${BINARY} AS binary

FROM scratch
COPY --from=binary /out/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=binary --chown=10001:10001 /out/data /data
COPY --from=binary /out/roam-notify /usr/local/bin/roam-notify
COPY config.toml.example /etc/roam-notify/config.toml.example
USER 10001:10001
WORKDIR /data
# In a container: listen on all interfaces, keep the database on the volume. The admin
# listener (/metrics, /-/reload, the operator API) is on 9090 for the cluster network and
# needs a token there: set ROAM_NOTIFY__SERVER__ADMIN_TOKEN (or the config's admin_token)
# from a secret, or the daemon refuses to start (exit 2). Publish only 8080 outside.
ENV ROAM_NOTIFY__SERVER__LISTEN=0.0.0.0:8080 \
    ROAM_NOTIFY__SERVER__ADMIN_LISTEN=0.0.0.0:9090 \
    ROAM_NOTIFY__STORAGE__URL=sqlite:///data/roam-notify.db
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/roam-notify", "healthcheck"]
# Docker sends SIGTERM, then SIGKILL after 10 s; server.shutdown_timeout (8 s) fits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/roam-notify"]
CMD ["serve"]
