"""Reports for people (Markdown tables, plots) and machines (JSON)."""
