"""``python -m benchmarks [--quick] [--only NAME ...] [--storage URL] [--out DIR] [--peer PEER]``.

Runs every benchmark against its baseline in the same run, prints one summary table, and writes
results.json and one PNG chart per benchmark to --out (default benchmarks/results/suite).
"""

import sys

from benchmarks._harness import main

sys.exit(main())
