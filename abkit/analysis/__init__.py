"""From tests to what the reader sees: one typed decision per comparison
(:mod:`~abkit.run.decision`), the path of a monitored comparison
(:mod:`~abkit.run.sequential`), effects by segment (:mod:`~abkit.run.segments`)
and retention health bands (:mod:`~abkit.run.health`).  The designs call these; the
run (:mod:`abkit.run`) assembles the result."""
