"""Bindery's workers: the jobs, the locks, the binding ledger and the one module that calls Twilio.

Also home to what web and worker share: `settings` (read once per process) and `keys`
(every Redis key Bindery owns).
"""
