"""The faces of disclosure: the Litestar app and the `disclosure` CLI."""
