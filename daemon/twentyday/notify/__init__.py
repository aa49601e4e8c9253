"""Delivery of alerts to people: the outbox's fan-out, the sinks, the deliverer, the reminder texts.

Sits above the store and compliance, below the daemon and the CLI (docs/ARCHITECTURE.md,
"notify"). The store never imports it: it queues alert events in its outbox table, and
this package reads them.
"""
