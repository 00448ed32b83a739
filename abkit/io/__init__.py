"""Loading and validating exports: readers, timestamp parsing, exclusions."""

from abkit.io.exclusions import Exclusion, Ledger
from abkit.io.readers import Data, Table, read_table

__all__ = ["Data", "Exclusion", "Ledger", "Table", "read_table"]
