"""The experiment archive: every analysis's per-metric estimates, standard errors and
decisions, kept append-only in Parquet files (:mod:`abkit.archive.store`, schema in
:mod:`abkit.archive.schema`), from which priors are learnt
(:mod:`abkit.stats.empirical_bayes`)."""

from abkit.archive.schema import SCHEMA, SCHEMA_VERSION
from abkit.archive.store import Archive, config_hash, rows_from_result

__all__ = ["SCHEMA", "SCHEMA_VERSION", "Archive", "config_hash", "rows_from_result"]
