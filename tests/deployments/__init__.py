"""Deployment checks: images, compose files and Kubernetes manifests."""
