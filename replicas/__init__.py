"""Database routing: writes to the primary, reads to healthy, caught-up replicas."""
