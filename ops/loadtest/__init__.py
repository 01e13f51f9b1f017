"""botctl loadtest: an open-model load generator for the webhook, with verification.

See :func:`ops.loadtest.runner.run_loadtest`. Requests are fired at their due
time whatever earlier responses do, and latency is measured from the due time,
so a stalled server shows up as latency instead of hiding as a lower send rate
(no coordinated omission).
"""
