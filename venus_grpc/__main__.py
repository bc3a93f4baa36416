"""``python -m venus_grpc`` is the ``venus`` command."""

import sys

from venus_grpc.cli import main

if __name__ == "__main__":  # not when multiprocessing's spawn re-imports this module in a worker
    sys.exit(main())
