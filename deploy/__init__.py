"""Deployment templates, their renderer, and the local loopback cluster."""
