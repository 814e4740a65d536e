// Package deploy holds the deployment files of redisload (a Dockerfile,
// Kubernetes manifests, a Compose file) and the tests that decode every
// manifest strictly into the Kubernetes API types, so that a typo fails
// the build rather than a cluster's apply.
package deploy
