"""The error a user can act on: raised for wrong input (arguments, files, data), never for a bug.

Entry points (the `reformer-ko` command, `examples/run_*.py`) print a `UserInputError` as one line and exit with
status 1 (2 for an `ArgumentError`); any other exception is a bug and keeps its traceback. It is a `ValueError`, so
callers of the library who catch `ValueError` keep working.
"""

import contextlib


class UserInputError(ValueError):
    """Something the user gave is wrong; the message says what, what was expected, and how to fix it."""


class ArgumentError(UserInputError):
    """A command-line argument (or a combination of them) that cannot work; entry points exit with status 2."""


@contextlib.contextmanager
def input_errors():
    """Within this block a `ValueError` is about the user's input: a command's setup (the tokenizer, the model's
    config, the corpus, the data files) checks what the user gave, and its checks raise `ValueError`s with
    actionable messages. They are re-raised as `UserInputError`, keeping the original as the cause."""
    try:
        yield
    except UserInputError:
        raise
    except ValueError as error:
        raise UserInputError(str(error)) from error
