"""Orders from every channel, and the preferences learnt from them."""
