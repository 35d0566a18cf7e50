"""Several engine processes on one PostgreSQL: concurrency, crashes, outages, platforms."""
