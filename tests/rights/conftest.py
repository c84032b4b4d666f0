from tests.profiles.tables import database_url  # noqa: F401 - until the migration exists
