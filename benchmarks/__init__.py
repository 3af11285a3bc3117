"""The provider's benchmark harness: ``.venv/bin/python -m benchmarks.run`` (docs/performance.md).

``servers`` starts the providers under test, ``seeding`` fills ours, ``wrk`` and ``load`` (the
asyncio client) generate the load, ``report`` prints the table and writes the JSON.
"""
