from framework import orm


class Entry(orm.Model):
    headline = orm.CharField(max_length=80)
    body = orm.TextField(default="")
    published = orm.BooleanField(default=False)
