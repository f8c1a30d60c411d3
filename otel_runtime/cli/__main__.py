"""``python -m otel_runtime.cli``: the ``otel-runtime`` command."""

import sys

from otel_runtime.cli import main

sys.exit(main())
