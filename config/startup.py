"""Start-up: a wrong or missing setting ends the process with one line naming it, not a traceback."""

import sys

from django.core.exceptions import ImproperlyConfigured

# gunicorn's exit code for "the application failed to load": its master stops instead of
# booting workers that fail the same way forever.
APP_LOAD_ERROR = 4


def load_settings_or_exit(exit_code: int = 1) -> None:
    """Import the settings module now; on ``ImproperlyConfigured`` print one line and exit."""
    from django.conf import settings

    try:
        settings.INSTALLED_APPS  # noqa: B018 (the first access imports the settings module)
    except ImproperlyConfigured as error:
        sys.stderr.write(f"error: {error}\n")
        sys.stderr.flush()
        raise SystemExit(exit_code) from None
