"""The pure core: geometry, matching and alert lifecycle. No broker, Redis or socket here."""
