# gatehouse and whoami in one small image, for envoy/istio/gatehouse.yaml:
#
#   docker build -t registry.example.com/gatehouse:0.1.0 .
#
# Both binaries are static (CGO off) and built with -tags vtprotobuf, as the
# Makefile builds them (docs/performance.md). The runtime image is distroless
# "nonroot": uid/gid 65532, the runAsUser/fsGroup of the Kubernetes manifest.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -tags vtprotobuf -trimpath -ldflags='-s -w' -o /out/gatehouse ./cmd/gatehouse && \
    CGO_ENABLED=0 go build -tags vtprotobuf -trimpath -ldflags='-s -w' -o /out/whoami ./cmd/whoami

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /out/whoami /usr/local/bin/
# ext_authz, admin, HTTP (JWKS, health, metrics)
EXPOSE 9001 9002 9003
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["serve", "--data-dir", "/data", "--authz-addr", "0.0.0.0:9001", "--admin-addr", "0.0.0.0:9002", "--http-addr", "0.0.0.0:9003"]
