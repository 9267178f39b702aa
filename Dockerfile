# syntax=docker/dockerfile:1
# meshwave: one static binary, every role (collector, proxy, server, …).
#   docker build -t ghcr.io/meshwave/meshwave:0.1.0 .

FROM golang:1.26 AS build
WORKDIR /src
# Module downloads get their own layer, reused while go.mod/go.sum are unchanged.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static (no cgo) so it runs on distroless/static; -trimpath and -s -w keep
# build paths and symbol tables out of the image.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/meshwave ./cmd/meshwave

# distroless/static: CA certificates (for an https backend), /etc/passwd with
# the nonroot user, no shell or package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meshwave /meshwave
# 65532 is distroless's "nonroot"; numeric so runAsNonRoot can verify it.
USER 65532:65532
# Collector self-metrics, proxy push and Zipkin, proxy metrics, server.
EXPOSE 9102 2878 9411 9103 8080
ENTRYPOINT ["/meshwave"]
