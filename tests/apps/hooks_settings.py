INSTALLED_APPS = ["tests.apps.hooks"]
