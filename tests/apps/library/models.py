from framework import orm


class Author(orm.Model):
    name = orm.CharField(max_length=50, unique=True)
    born = orm.DateField(null=True)


class Tag(orm.Model):
    label = orm.CharField(max_length=20)


class Book(orm.Model):
    title = orm.CharField(max_length=100)
    author = orm.ForeignKey(Author, on_delete=orm.CASCADE, related_name="books")
    price = orm.DecimalField(max_digits=6, decimal_places=2, null=True)
    extra = orm.JSONField(null=True)
    tags = orm.ManyToManyField(Tag, related_name="books")
