"""One exception type for problems the user can fix; stages print it as one line, no traceback."""


class UserError(Exception):
    """Bad input, missing asset or bad params: the message says what to do."""


def first_line(err: BaseException) -> str:
    """`Type: first line` of an exception, for one-line messages about files a library failed to read."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:120]}" if text else type(err).__name__
