"""Errors whose message is meant for a person, not a traceback."""


class KqvError(Exception):
    """Base class: the message is complete and can be shown to the user as is."""


class UserInputError(KqvError, ValueError):
    """The learner's input cannot be used (empty prompt, layer out of range...)."""


class ModelUnavailable(KqvError):
    """A model package is missing or damaged; `fix` is the command that repairs it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix
