"""Substrate `baremetal`: a GPU Kubernetes cluster (k3s or RKE2) built over SSH from an inventory."""
