"""One exception type for problems the user can fix; stages print it as one line, no traceback."""


class UserError(Exception):
    """Bad input, missing asset or bad params: the message says what to do."""


def first_line(err: BaseException) -> str:
    """`Type: first line` of an exception, for one-line messages about files a library failed to read.

    torch.load's refusal of a file (`weights_only=True`, the project's rule) is said plainly: its own text
    begins with a history of the default and goes on to suggest `weights_only=False`, i.e. unpickling an
    untrusted file, which is exactly what a user must not do with a broken or foreign checkpoint.
    """
    if "Weights only load failed" in str(err):
        return f"{type(err).__name__}: not a file torch.load reads safely (weights_only=True)"
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:120]}" if text else type(err).__name__
