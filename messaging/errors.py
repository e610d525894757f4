"""What the messaging services raise when a request cannot be served; the API maps each to a status."""


class MessagingError(Exception):
    """Carries the name of the offending field, so a client can tell which input to fix."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(MessagingError):
    """The input is malformed or breaks a rule (400)."""


class Unprocessable(InvalidInput):
    """Input of the right form that cannot be used, for a reason no schema can state (422): a
    phone number that no one can have, a cron expression that never fires."""


class NotFound(MessagingError):
    """No such object in the caller's church (404): another church's object is not found either."""


class Conflict(MessagingError):
    """The input clashes with what is stored (409), e.g. a contact's number already exists."""


class AccountLockedOut(Exception):
    """Too many failed logins for this account (429): no password is checked for ``seconds``."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.seconds = seconds
