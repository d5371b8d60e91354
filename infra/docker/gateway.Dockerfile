# syntax=docker/dockerfile:1
# The local API gateway (infra/gateway): serves template.yaml's routes on :3000
# and invokes each function's container through its runtime interface emulator.
#
#   docker build -f infra/docker/gateway.Dockerfile -t tempwatch/gateway:dev .
#
# Build context: the repository root.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
COPY infra/go.mod infra/go.sum infra/
RUN --mount=type=cache,target=/go/pkg/mod cd infra && go mod download
COPY shared/ shared/
COPY infra/ infra/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    cd infra && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags='-s -w' -o /out/gateway ./gateway

FROM gcr.io/distroless/static-debian12:nonroot@sha256:d093aa3e30dbadd3efe1310db061a14da60299baff8450a17fe0ccc514a16639
COPY --from=build /out/gateway /usr/local/bin/gateway
# The template is baked in so the image runs alone; compose mounts the live one over it.
COPY template.yaml /etc/tempwatch/template.yaml
ENV TEMPLATE_PATH=/etc/tempwatch/template.yaml GATEWAY_ADDR=:3000
USER nonroot:nonroot
EXPOSE 3000
ENTRYPOINT ["/usr/local/bin/gateway"]
