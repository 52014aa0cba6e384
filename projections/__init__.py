"""bo.event_log → read tables: versioned projectors, their runner and their read queries."""
