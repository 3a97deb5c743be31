"""User-facing errors: each carries a one-paragraph message and the CLI's exit code."""


class ReportgenError(Exception):
    """An error the user can fix; the CLI prints its message without a traceback."""

    exit_code = 1


class SpecError(ReportgenError):
    """The spec file or a command-line argument is wrong."""

    exit_code = 2


class DataError(ReportgenError):
    """A data set is missing or its files are damaged."""

    exit_code = 3


class ResultsFileError(ReportgenError):
    """A results.json given to a command (`reportgen diff`) is missing, damaged or of another schema."""

    exit_code = 2


class CacheError(ReportgenError):
    """The run cache cannot be read or written (read-only folder, full disk...)."""

    exit_code = 4
