"""The `payment_ledger_pairs` read model: one row per payment order id, its legs and status."""
