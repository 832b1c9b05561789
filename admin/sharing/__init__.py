"""What leaves the harbour: sharing agreements, the signals sent to the hub, and the insight
statistics."""
