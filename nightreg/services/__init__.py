"""Use-cases: what the kiosk, the staff pages, the CLI and the jobs ask of the register."""
