"""Substrate `eks`: network, KMS, EKS control plane, managed node groups, storage and IAM, one concern per file."""
