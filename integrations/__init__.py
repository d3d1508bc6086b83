"""Everything AskPro says to the outside world: one HTTP seam, retries, breakers, clients."""
