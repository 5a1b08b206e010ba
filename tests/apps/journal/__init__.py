"""A fixture app with models and a migrations package."""
