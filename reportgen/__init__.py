"""reportgen: answer deep-learning experiment questions with measured, cached runs rendered into a report."""

__version__ = "0.1.0"
