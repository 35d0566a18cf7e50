"""iwant's errbot backend for XMPP: errbot's own XMPP backend (slixmpp), fixed and extended
where iwant needs it; see backend.py."""
