"""One kind of error for bad input: the entry points report it as one line, never a traceback."""


class PipelineError(Exception):
    """A problem with the user's data, params or environment: reported as one line, no traceback."""
