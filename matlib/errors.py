"""User-facing errors: printed by the CLI as one line, never as a traceback."""


class MatlibError(Exception):
    """An error caused by the user's input or environment, shown as one line."""


class IntegrityError(MatlibError):
    """A stored artefact does not match its recorded checksum."""


class ValidationError(MatlibError):
    """Input data failed validation (names the row/field)."""
