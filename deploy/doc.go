// Package deploy holds deid's deployment files — the container image's
// checks, deploy/compose.yaml and the Kubernetes manifests under k8s/ — and
// the tests that validate them offline: every manifest decoded strictly into
// the Kubernetes API types, the compose file against the compose
// specification's JSON schema (vendored in schema/), deid's own config
// checked by the binary, and the image built and inspected with podman.
//
// It is a module of its own, so that the Kubernetes API types stay out of
// deid's dependencies.
package deploy
