"""Errors that the command line reports as one clear line instead of a traceback."""


class DemvaeWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints ``warning: ...``)."""


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


class RunInUse(DemvaeError):
    """Another process is writing the same run folder."""


class RunFinished(DemvaeError):
    """``train --resume`` on a run that has nothing left to do (reported, not an error: exit 0)."""


class Interrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C after finishing its step and saving a resumable checkpoint.

    A ``KeyboardInterrupt``, so code that stops on Ctrl-C stops here too; ``run_dir`` and ``step``
    say where to resume."""

    def __init__(self, run_dir, step: int):
        super().__init__(f"interrupted at step {step}; the state is saved in {run_dir}/last")
        self.run_dir, self.step = run_dir, step
