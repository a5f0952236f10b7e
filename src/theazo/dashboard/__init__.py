"""The web dashboard ``theazo serve`` shows at /dashboard: a project's tasks, sessions and
queue, live, for a person signed in with the project's API key (docs/operations.md,
"Dashboard"). Its page and assets are files of this package (``static/``): nothing is
fetched from elsewhere and nothing is built at install time."""
