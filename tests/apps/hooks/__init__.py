"""A fixture app without models whose management module connects receivers."""
