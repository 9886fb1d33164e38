"""Everything GuardianFlow records in MLflow."""
