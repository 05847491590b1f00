"""Small helpers shared by the tools: quiet dependency warnings, live progress of runs."""
