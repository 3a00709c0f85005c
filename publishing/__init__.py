"""The data core of disclosure: the one writer of everything the public sees."""
