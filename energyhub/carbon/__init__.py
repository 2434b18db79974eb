"""Carbon steward: emission factors, accounting per site and tenant, targets and reports."""
