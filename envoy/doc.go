// Package envoy holds no Go code: it is the home of the Envoy bootstraps (envoy.yaml,
// envoy-jwt-authn.yaml) and, under istio/, the Istio and Kubernetes manifests that put gatehouse
// in front of an origin.
//
// The configuration files are documentation users copy, so they are tested like code:
// validate_test.go decodes every *.yaml here into Envoy's v3 Bootstrap proto with unknown fields
// rejected, resolves every typed_config against the registered extension types, runs the
// protoc-gen-validate constraints on the bootstrap and on each typed extension inside it, and
// asserts the facts the docs rely on (ext_authz before the router, fail closed with 503, HTTP/2
// to gatehouse, /healthz exempt). Envoy itself is not needed to run them.
package envoy
