"""Operations: health and readiness probes, Prometheus metrics.

`metrics.py` imports nothing from Polku, so any layer (collect, log, pipeline, workers) may
record a metric; `health.py` checks a `Runtime` (the runtime's layer) and `api.py` is the
HTTP edge over both.
"""
