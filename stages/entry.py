"""What every entry point shares: user errors end the program with one line instead of a traceback."""

import functools
import sys

from emotion.errors import TrainingInterrupted, UserError

INTERRUPTED_EXIT = 130  # what shells report for Ctrl-C


def user_errors_exit(main):
    """Wrap an entry point so a UserError exits non-zero with 'error: <message>' (130 for an interruption)."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except TrainingInterrupted as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(INTERRUPTED_EXIT)
        except UserError as err:
            sys.exit(f"error: {err}")

    return wrapper
