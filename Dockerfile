# syntax=docker/dockerfile:1
# roam-notify image: a static-ish release binary on a slim Debian runtime with CA
# certificates (reqwest's rustls verifier needs the system store), a non-root user,
# /data for the SQLite outbox, and a HEALTHCHECK that needs no shell or curl.
#
#   docker build -t roam-notify .
#   docker run -p 8080:8080 -v roam-data:/data \
#     -e ROAM_NOTIFY_ROAM_API_KEY=... -e ROAM_NOTIFY_CONFIG=/etc/roam-notify/config.toml \
#     -v $PWD/config.toml:/etc/roam-notify/config.toml:ro roam-notify

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
COPY src ./src
COPY templates ./templates
COPY benches ./benches
COPY tests ./tests
# Cache the registry and target dir between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin roam-notify \
 && cp target/release/roam-notify /roam-notify

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin roam \
 && mkdir -p /data /etc/roam-notify \
 && chown roam:roam /data
COPY --from=build /roam-notify /usr/local/bin/roam-notify
COPY config.toml.example /etc/roam-notify/config.toml.example
USER roam
WORKDIR /data
# In a container: listen on all interfaces, keep the database on the volume. The admin
# listener (/metrics, /-/reload) is on 9090 for Prometheus inside the cluster network;
# publish only 8080 to the outside.
ENV ROAM_NOTIFY__SERVER__LISTEN=0.0.0.0:8080 \
    ROAM_NOTIFY__SERVER__ADMIN_LISTEN=0.0.0.0:9090 \
    ROAM_NOTIFY__STORAGE__URL=sqlite:///data/roam-notify.db
VOLUME ["/data"]
EXPOSE 8080 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["roam-notify", "healthcheck"]
# Docker sends SIGTERM, then SIGKILL after 10 s; server.shutdown_timeout (8 s) fits.
STOPSIGNAL SIGTERM
ENTRYPOINT ["roam-notify"]
CMD ["serve"]
