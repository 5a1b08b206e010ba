INSTALLED_APPS = ["reqcount"]
