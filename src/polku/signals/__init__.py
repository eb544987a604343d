"""Buying signals: score purchase intent from each event as it flows through the pipeline,
and route what is worth acting on to the store, the agent or the automation that can act.

- `candidates`: what scoring hands to routing (a `Candidate` with its `Reason`s in words).
- `features`: per-session and per-profile features, updated incrementally from each event;
  the same code turns a live session into the UCI Online Shoppers feature row.
- `model`: the trained, calibrated purchase-probability model and its explanations.
- `rules`: declarative rule signals from YAML.
- `consumer`: the pipeline consumer that ties features, model and rules to routing.
- `routing`, `actions`, `queries`, `api`, `webhooks`, `live`: queues, claims, outcomes,
  conversion, suppression, the live feed and the CRM webhooks.
- `training`, `evaluation`: `polku signals train` / `polku signals evaluate`.
"""
