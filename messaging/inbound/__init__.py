"""What reaches a church from outside: contacts' messages and delivery reports (signed provider
callbacks, ``webhooks``), and the church's own numbers being linked at the provider."""
