# syntax=docker/dockerfile:1
#
# Rapport: a self-hosted CRM driven over MCP.
#   docker build -t rapport .
#   docker run -p 8080:8080 -v rapport-data:/data -e RAPPORT_PUBLIC_URL=http://localhost:8080 rapport
# The cache mounts below need BuildKit (the default builder since Docker 23).

# ---- build ------------------------------------------------------------------
FROM rust:1.95-bookworm AS builder
WORKDIR /src

# rust-toolchain.toml pins the exact toolchain; install it (and any component the
# image lacks) in its own layer so source changes do not repeat the download.
COPY rust-toolchain.toml ./
RUN rustup toolchain install

# Never reach for a database at compile time.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never

COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin rapport \
 && install -m 0755 target/release/rapport /usr/local/bin/rapport

# ---- run --------------------------------------------------------------------
FROM debian:bookworm-slim

# ca-certificates for outbound TLS; curl for the HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

RUN groupadd --system --gid 10001 rapport \
 && useradd --system --uid 10001 --gid rapport --home-dir /data --shell /usr/sbin/nologin rapport \
 && mkdir -p /data \
 && chown rapport:rapport /data

COPY --from=builder /usr/local/bin/rapport /usr/local/bin/rapport

# Listen on every interface inside the container; keep the SQLite file on the volume.
# Set RAPPORT_PUBLIC_URL to the address clients use (it goes into install commands
# and the Host/Origin checks on /api/v1/mcp).
ENV RAPPORT_ADDR=0.0.0.0:8080 \
    RAPPORT_DATABASE_URL=sqlite:///data/rapport.db

USER rapport
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# /healthz answers while the process is up; it does not touch the database.
# If you change the port in RAPPORT_ADDR, override this check too.
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["rapport"]
CMD ["serve"]
