"""Throughput benchmark of Venus, with same-run ceilings.

``python -m benchmarks.run`` starts its own Tansu broker and Venus, drives load from a separate
process, and compares Venus with two ceilings measured on the same machine in the same invocation:
an empty gRPC server (what gRPC + protobuf alone allow) and a bare aiokafka producer (what the
broker alone allows). Numbers from different machines or different days are not comparable; a
ratio to same-run ceilings is.

Modules, each run as its own process where it matters for CPU accounting:

- ``run``: the command; plans the invocation, prints the tables and verdicts, saves the JSON.
- ``bench``: the runs it is made of (Venus, the two ceilings, the sweep, cost rounds, overload), each
  starting and stopping its own processes.
- ``load``: the gRPC load driver (closed or open loop), a subprocess.
- ``empty_server``: the transport ceiling, a subprocess.
- ``broker_load``: the broker ceiling, a subprocess.
- ``phases``: the window/tally protocol the two drivers share with ``run``.
- ``procs``: starting, health-waiting, metering and stopping processes by pid.
- ``verify``: reading a topic back to check that every event answered OK is in Kafka.
- ``options``, ``records``, ``targets``, ``report``: its command line, what a run amounts to, the targets of
  issue #15 judged from one invocation, the tables and the JSON.
- ``meter``: CPU time and resident memory of a process tree.
- ``http_calls``: the load driver's HTTP/1.1 and HTTP/2 clients.

Other commands: ``producers`` (aiokafka against confluent-kafka), ``security`` (TLS and API keys against
plaintext), ``client`` (venus-client's transports), ``parse`` (the request parser), and ``faults`` (the
fault scenarios, docs/reliability.md).
"""
