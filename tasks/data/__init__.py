"""Small demo data sets shipped with the repo (see README.md here for sources)."""
