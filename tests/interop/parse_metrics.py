"""Reads a /metrics exposition on stdin with the official Prometheus client's own OpenMetrics
parser, as a scrape would.

    python parse_metrics.py < exposition

Prints one JSON line: the number of samples, and every `model` label value, sorted. Exits 1 with
the parser's error when the exposition does not parse (a forged series breaks it), and 3 when
the package is missing. Run by tests/it/security.rs.
"""

import json
import sys

try:
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
except ImportError:
    sys.exit(3)

try:
    samples = 0
    models = set()
    for family in text_string_to_metric_families(sys.stdin.read()):
        for sample in family.samples:
            samples += 1
            if "model" in sample.labels:
                models.add(sample.labels["model"])
except Exception as error:  # the parser raises ValueError and friends; any of them fails it
    print(f"the exposition does not parse: {error!r}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"samples": samples, "models": sorted(models)}))
