"""rdsgate: a serverless SQL gateway for Amazon RDS with IAM database authentication."""

__version__ = "0.1.0"
