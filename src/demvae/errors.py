"""Errors that the command line reports as one clear line instead of a traceback."""


class DemvaeError(Exception):
    """Base class: a user-facing problem (bad input, bad config, missing file)."""


class DataError(DemvaeError):
    """A corpus file is missing, empty, badly encoded or malformed.

    The message names the file and, where it applies, the line number.
    """

    def __init__(self, message: str, path: object | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f":{line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line


class ConfigError(DemvaeError):
    """An unknown or ill-typed configuration key or value."""


class CheckpointError(DemvaeError):
    """A run folder or checkpoint file is missing or unreadable."""


class TrainingError(DemvaeError):
    """Training cannot go on (e.g. the loss became NaN)."""
