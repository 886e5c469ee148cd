"""Class-balance check over StatisticsGen output."""
