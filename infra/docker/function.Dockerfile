# syntax=docker/dockerfile:1
# One Lambda function as a container image on the provided.al2023 base image.
# The base image's entrypoint runs the runtime interface emulator when it is not
# on AWS, so the same image answers the Invoke API on :8080 locally
# (POST /2015-03-31/functions/function/invocations) and runs as-is on Lambda.
#
#   docker build -f infra/docker/function.Dockerfile --build-arg FUNCTION=clients -t tempwatch/clients:dev .
#
# Build context: the repository root.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
ARG FUNCTION
RUN test -n "$FUNCTION" || { echo "build arg FUNCTION is required (a folder under functions/)" >&2; exit 1; }
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY shared/ shared/
COPY functions/ functions/
RUN test -f "functions/${FUNCTION}/main.go" || { echo "functions/${FUNCTION}/main.go not found" >&2; exit 1; }
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -tags lambda.norpc -ldflags='-s -w' \
      -o /out/bootstrap "./functions/${FUNCTION}"

FROM public.ecr.aws/lambda/provided:al2023.2026.02.27.21
# LAMBDA_RUNTIME_DIR is /var/runtime in the base image; its entrypoint runs
# ${LAMBDA_RUNTIME_DIR}/bootstrap, under the emulator when off AWS.
COPY --from=build /out/bootstrap ${LAMBDA_RUNTIME_DIR}/bootstrap
CMD ["bootstrap"]
