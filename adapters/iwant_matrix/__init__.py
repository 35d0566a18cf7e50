"""iwant on Matrix: the IWantMatrix errbot backend (matrix-nio, end-to-end encryption)."""
