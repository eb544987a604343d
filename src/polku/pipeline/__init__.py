"""The pipeline: consumers that read the log in order and maintain projections."""
