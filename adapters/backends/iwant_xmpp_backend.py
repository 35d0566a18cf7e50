"""errbot loads a backend from a file beside its .plug; the backend is the package iwant_xmpp."""

from iwant_xmpp.backend import IWantXMPPBackend

__all__ = ["IWantXMPPBackend"]
