"""Calendars: busy times read from a person's own calendar, and invites for a match.

Providers are plugins (the ``iwant_calendars`` hook); the built-ins are registered through
that hook like a third party's. ``provider.py`` is what every provider implements.
"""
