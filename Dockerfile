# syntax=docker/dockerfile:1
#
# SMEK images, all static Go binaries (CGO off):
#
#   docker build --target action      .   # the GitHub Action and CLI (default)
#   docker build --target provisioner .   # the SMEK server
#   docker build --target app         .   # the GitHub App as its own process
#
# The action image is FROM scratch: the binary, CA certificates, nothing
# else (about 7 MB). It has no USER and no WORKDIR on purpose: the runner
# runs container actions as root with /github/workspace as working
# directory.

ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS source
WORKDIR /src
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .

FROM source AS build-action
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build -ldflags="-s -w -X main.version=${VERSION}" -o /rootfs/smek ./action \
 && ln -s smek /rootfs/smek-post \
 && mkdir -p /rootfs/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/

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
COPY --from=build-action /rootfs/ /
ENTRYPOINT ["/smek"]
