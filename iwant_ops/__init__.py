"""A bot process's operations side: its HTTP endpoint (/healthz, /metrics), its Prometheus
metrics and its JSON log lines. Knows no engine and no platform: the plugin wires it."""
