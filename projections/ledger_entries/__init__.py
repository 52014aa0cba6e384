"""The `ledger_entries` read model: one row per tx_id, newest state wins."""
