"""``python -m venus_grpc`` is the ``venus`` command."""

import sys

from venus_grpc.cli import main

sys.exit(main())
