"""The workload being scaled: churches, contacts, messages, the JSON API and webhooks."""
