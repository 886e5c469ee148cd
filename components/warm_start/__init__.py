"""--warm-start as a Model artifact: resolved and copied where the pipeline runs."""
