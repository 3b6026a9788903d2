"""The error a user can act on: raised for wrong input (arguments, files, data), never for a bug.

Entry points (the `reformer-ko` command, `examples/run_*.py`) print a `UserInputError` as one line and exit with
status 1; any other exception is a bug and keeps its traceback. It is a `ValueError`, so callers of the library who
catch `ValueError` keep working.
"""


class UserInputError(ValueError):
    """Something the user gave is wrong; the message says what, what was expected, and how to fix it."""


class ArgumentError(UserInputError):
    """A command-line argument (or a combination of them) that cannot work; entry points exit with status 2."""
