# syntax=docker/dockerfile:1
# The device simulator (infra/simulator, in the infra module): publishes
# readings of simulated client companies' sensors over MQTT. The image also
# holds infra/cmd/admin, which compose's simulator-admin service runs to
# create the admin the simulator logs in as.
#
#   docker build -f infra/docker/simulator.Dockerfile -t tempwatch/simulator:dev .
#
# Build context: the repository root (the infra module replaces the product
# module with ../, so both are copied).

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY infra/go.mod infra/go.sum infra/
RUN --mount=type=cache,target=/go/pkg/mod cd infra && go mod download
COPY shared/ shared/
COPY infra/ infra/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd infra && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/ ./simulator ./cmd/admin

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/simulator /usr/local/bin/simulator
COPY --from=build /out/admin /usr/local/bin/admin
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/simulator"]
