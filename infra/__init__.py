"""AWS CDK app that deploys rdsgate: one stack per account, built from small constructs."""
