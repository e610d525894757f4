"""Probes for load balancers and Kubernetes: /health, /health/live, /health/ready, /health/detailed."""
