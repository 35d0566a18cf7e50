"""iwant's errbot backend for Telegram (python-telegram-bot 22): see backend.py."""
