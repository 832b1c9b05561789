"""The JSON API under /api/v1 (v1), its signals calls (signals) and their shared error shapes
(common)."""
