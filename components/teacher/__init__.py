"""--teacher as a Model artifact: its SavedModels resolved and copied where the pipeline runs."""
