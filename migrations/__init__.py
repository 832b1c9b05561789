"""Alembic migrations, shipped inside the package so that `nightreg db upgrade` finds them."""
