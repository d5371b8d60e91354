# syntax=docker/dockerfile:1
# The MQTT -> ingest bridge: a static binary on distroless, run as non-root.
# It serves /healthz and /metrics on :8081 (METRICS_ADDR).
#
#   docker build -f infra/docker/bridge.Dockerfile -t tempwatch/bridge:dev .
#
# Build context: the repository root.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
# BRIDGE_PKG is the bridge's main package, relative to the repository root.
ARG BRIDGE_PKG=./bridge
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY shared/ shared/
COPY bridge/ bridge/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/bridge "${BRIDGE_PKG}"

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/bridge /usr/local/bin/bridge
USER nonroot:nonroot
ENV METRICS_ADDR=:8081
EXPOSE 8081
# distroless has no shell or curl: the binary checks itself, healthy once it
# is subscribed (its /healthz).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/bridge", "-healthcheck"]
ENTRYPOINT ["/usr/local/bin/bridge"]
