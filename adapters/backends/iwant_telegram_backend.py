"""errbot loads a backend from a file beside its .plug; the backend is the package
iwant_telegram."""

from iwant_telegram.backend import IWantTelegramBackend

__all__ = ["IWantTelegramBackend"]
