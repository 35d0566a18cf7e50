"""iwant's errbot backend for Slack (slack-sdk): see backend.py."""
