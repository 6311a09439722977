"""The project's error types. The CLI maps every one of them to a one-line message and exit 2."""

from __future__ import annotations


class CnnprobeError(Exception):
    """A problem with the user's input (file, options) that ends the command."""

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ModelError(CnnprobeError):
    """The model file is unreadable, malformed or unsupported."""


class UsageError(CnnprobeError):
    """Options that contradict each other or the model."""
