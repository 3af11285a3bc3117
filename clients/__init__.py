"""Demo relying parties and local helpers that talk to the provider only over its public protocol."""
