"""Names of the columns abkit's own frames carry (the input's columns are renamed to
these once validated), so that no layer depends on the user's column names.

This module imports nothing: every layer, the metric types included, may read it.
"""

UNIT = "_unit"
VARIANT = "_variant"
ASSIGNED_AT = "_assigned_at"
ACCOUNT = "_account"
REASON = "_reason"
ROW = "_row"
# the assignments' order of a unit, kept with the per-unit rows on an engine (which
# returns rows in any order)
ORDER = "_order"
