"""Events or unit tables → one row per unit with metric numerators and denominators."""
