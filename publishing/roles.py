"""The back office's roles, apart from the tables: the CLI offers them without loading SQLModel."""

ROLES = ("reviewer", "approver", "admin")
