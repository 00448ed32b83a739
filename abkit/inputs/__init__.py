"""The input stage: each input kind (events, unit-level table, summary table, paired
export, accounts table) read, validated and reduced to per-unit rows and per-arm
statistics (:func:`abkit.inputs.prepare.prepare`); no test is run here."""
