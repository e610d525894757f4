"""One settings file per integration, imported by ``base``."""
