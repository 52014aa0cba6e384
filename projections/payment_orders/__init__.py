"""The `payment_orders` read model: one row per order_id, personal data stored masked only."""
