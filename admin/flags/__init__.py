"""The flags the rules raise: the list, one flag and its review, forwarding, the export, and the
observations staff file by hand."""
