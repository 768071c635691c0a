"""One exception type for problems the user can fix; stages print it as one line, no traceback."""


class UserError(Exception):
    """Bad input, missing asset or bad params: the message says what to do."""
