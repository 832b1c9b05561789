"""What ran and who did what: the audit trail and its verification, the scheduled jobs and the
outbox."""
