"""errbot loads a backend from a file beside its .plug; the backend is the package iwant_slack."""

from iwant_slack.backend import IWantSlackBackend

__all__ = ["IWantSlackBackend"]
