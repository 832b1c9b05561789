"""Who signs in and where they work: sign-in, passwords and two-factor; users, sites and
check-in points."""
