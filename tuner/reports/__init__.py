"""Reading a study back: which trial is best and in what order (`ranking`), tables and
summaries (`tables`), plots (`plots`) and the live line per trial (`progress`)."""
