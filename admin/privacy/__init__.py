"""What the register keeps and gives back: retention policies and the purge, legal holds, and the
data subject's requests (report and erasure)."""
