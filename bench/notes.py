"""What the figures mean, kept with the code that produces them (written into RESULTS.md)."""

NOTES = """## Notes

(filled in after analysis)"""
