"""The Trainer with one more optional input: the class-balance report."""
