"""The night round: the harbour master's evening walk along the piers, on a phone."""
