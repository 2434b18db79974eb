"""Plans in the database: draft → approved → active → superseded or expired; approval policy."""
