# The `sentinel` binary in a small image. Build: docker build -t sentinelstream .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p sentinel-node -p sentinel-loadtest

FROM debian:bookworm-slim
# curl: the compose healthcheck probes /readyz with it.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/sentinel /usr/local/bin/sentinel
COPY --from=build /src/target/release/sentinel-loadtest /usr/local/bin/sentinel-loadtest
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["sentinel"]
CMD ["run", "--data-dir", "/data", "--http-listen", "0.0.0.0:8080"]
