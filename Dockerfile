# syntax=docker/dockerfile:1
#
# SMEK images, all static Go binaries (CGO off):
#
#   docker build --target action      .   # the GitHub Action and CLI (default)
#   docker build --target provisioner .   # the SMEK server
#   docker build --target app         .   # the GitHub App as its own process
#
# The action image is FROM scratch: the release's own smek binary (the very
# file the release attaches and SHA256SUMS names), /smek-post, a second name
# of it for the post step, and CA certificates; nothing else. It needs no
# base image and no compiler: tools/release lays its files out first, for
# each Linux platform to build:
#
#   go run ./tools/release dist -version v0.0.0-dev -out dist linux/amd64
#   docker build --target action .
#
# It has no USER and no WORKDIR on purpose: the runner runs container
# actions as root with /github/workspace as working directory.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS source
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .

FROM source AS build-provisioner
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/provisioner ./provisioner

FROM source AS build-app
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags="-s -w -X main.version=${VERSION}" -o /out/app ./app

FROM gcr.io/distroless/static-debian12:nonroot AS provisioner
COPY --from=build-provisioner /out/provisioner /usr/local/bin/provisioner
VOLUME /var/lib/smek
ENV SMEK_DATA_DIR=/var/lib/smek
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/provisioner"]
CMD ["serve", "--addr", ":8080"]

FROM gcr.io/distroless/static-debian12:nonroot AS app
COPY --from=build-app /out/app /usr/local/bin/app
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/app"]

# Last, so that a plain `docker build .` makes the action image.
FROM scratch AS action
ARG TARGETARCH
COPY dist/image/linux-${TARGETARCH}/ /
ENTRYPOINT ["/smek"]
