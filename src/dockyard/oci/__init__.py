"""OCI data: runtime spec (config.json) validation; image model later."""
