"""Quality: metrics, baselines, cost, the report, the comparison page and the assessment."""
