"""Trigger kinds, one module each: what a kind's configuration must hold, how it reacts to
progress or to stored events, and its periodic scan. `nudges.triggers.registry` registers them;
`nudges.triggers.engine` dispatches to them."""
