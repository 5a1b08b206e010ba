"""A fixture app with models and no migrations: ``migrate`` creates its tables."""
