"""What a user states and the names it travels under, torch-free: settings and every
command's options (`settings`, `options`), the search space (`space`, `overrides`), the
costs, constraints and objectives a study aims at (`goals`), names (`names`) and the keys of
every record we write (`keys`)."""
