"""What every entry point shares: user errors end the program with one line instead of a traceback."""

import functools
import sys

from emotion.errors import UserError


def user_errors_exit(main):
    """Wrap an entry point so a UserError exits non-zero with 'error: <message>'."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as err:
            sys.exit(f"error: {err}")

    return wrapper
