"""The benchmark harness: the simulator and the gateway as separate processes, load from this one.

- ``processes``: start both on free loopback ports, read their ``/proc`` accounting
- ``load``: gRPC, REST and direct-to-simulator drivers at a fixed concurrency
- ``scenarios``: instant issuance, look-ups, watchers, many pending orders
- ``stats``: percentiles, spreads, histogram quantiles, collect lateness from the call log
- ``report``: what each figure means, the table and the JSON document

Run it with ``python -m benchmarks`` (``make bench``); docs/performance.md has the figures.
"""
