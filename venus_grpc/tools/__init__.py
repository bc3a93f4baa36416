"""Operator tools around a running Venus: ``venus send``/``tail``, ``trace-logs``, ``canary``, the embedded dev
broker and the fault ledger. The gateway itself (``server``, ``ingest``) never imports this package."""
