"""rdsgate: a serverless SQL gateway for Amazon RDS with IAM database authentication."""

__all__ = ["__version__"]

__version__ = "0.1.0"
