// Package deploy holds the deployment files' test: deploy_test.go builds
// the image from the repository's Dockerfile, starts docker-compose.yml
// with the TLS configuration of deploy/nginx/ and checks it from outside
// (docs/deploy.md). The directory also holds what the deployment
// mounts (nginx/, tls/) and the stand-in images for machines without a
// registry (standins/). There is no Go code to import.
package deploy
