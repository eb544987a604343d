"""Returns (request, receipt, inspection, refund), their policy, and the outlet listings of
returned units sold at a discount in the store that received them."""
