"""ClickHouse's HTTP interface over the embedded store, so every ClickHouse client works on the default set-up."""
