"""Label a video archive: `python -m realtime.batch INPUT --out results/`, on a local process pool or a Ray cluster
(--ray ADDRESS); records and per-track summaries as Parquet datasets partitioned by video."""
