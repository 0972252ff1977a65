"""What a reader sees: headline (the registry of headline metrics, years and number
formats), tables (the terminal's tables), findings (sentences), plots, report (HTML,
CSV/Parquet export), effects (the expected effects and `forecast answers`)."""
