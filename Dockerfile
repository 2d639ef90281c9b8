# syntax=docker/dockerfile:1
# Build: the whole toolchain, thrown away afterwards.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock app-manifest.yml ./
COPY migrations migrations
COPY src src
COPY benches benches
COPY examples examples
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin agentic \
 && cp target/release/agentic /agentic

# Run: a small Debian with CA certificates, as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/agentic --create-home agentic
COPY --from=build /agentic /usr/local/bin/agentic
USER agentic
WORKDIR /var/lib/agentic
# State (SQLite database, App credentials from the setup flow) lives here.
VOLUME /var/lib/agentic
ENV AGENTIC_LISTEN=0.0.0.0:3000 \
    AGENTIC_DATABASE_URL=sqlite:///var/lib/agentic/agentic.db \
    AGENTIC_APP_CREDENTIALS_PATH=/var/lib/agentic/agentic-app.json \
    AGENTIC_LOG_FORMAT=json
# The webhook and the setup flow. Set AGENTIC_METRICS_LISTEN=0.0.0.0:9100 to
# move /metrics, /healthz and /readyz to a port you do not publish
# (docs/INSTALL.md); unset, they are served on 3000 too.
EXPOSE 3000
STOPSIGNAL SIGTERM
ENTRYPOINT ["agentic"]
CMD ["serve"]
