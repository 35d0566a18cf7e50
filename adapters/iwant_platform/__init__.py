"""The chat side of iwant that every platform shares: the adapter contract (``contract``),
its defaults for errbot's own backends (``errbot_backends``), the pieces every adapter needs
once (``redaction``, ``shutdown``, ``recent``), and the adapter kit (``kit``).

Nothing here imports the engine or a chat platform's library: an adapter depends on this
package and on errbot, the iwant plugin on this package and on the engine.
"""
