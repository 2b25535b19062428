"""rdsgate's benchmark suite: ``python3 -m bench`` writes bench/RESULTS.md (see docs/PERFORMANCE.md)."""
