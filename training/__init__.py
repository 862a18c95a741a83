"""Ray Train entrypoints (`python -m training.NAME`): NVP and synthesis training arrive with their issues."""
