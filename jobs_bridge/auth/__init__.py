"""Who is asking and what they may do: the one home for identity, the visibility rule and tokens."""
