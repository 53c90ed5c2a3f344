"""Bindery's benchmarks: `bench/run` (or `make bench`, `make bench-quick`) runs them.

One module per benchmark (`b1_ingest` ... `b6_cleanup`), over a harness of real processes
(`harness`), a load generator (`load`) and pre-signed Twilio webhooks (`signing`).
"""
