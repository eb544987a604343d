"""Operations: health and readiness probes, Prometheus metrics, structured logs.

`metrics.py` imports nothing from Polku and `logs.py` only `polku.settings`, so any layer
(collect, log, pipeline, workers) may record a metric or configure logging; `health.py`
checks a `Runtime` (the runtime's layer) and `api.py` is the HTTP edge over all three.
"""
