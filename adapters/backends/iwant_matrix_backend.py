"""errbot loads a backend from a file beside its .plug; the backend is the package iwant_matrix."""

from iwant_matrix.backend import IWantMatrixBackend

__all__ = ["IWantMatrixBackend"]
