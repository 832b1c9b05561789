"""The staff side: health check now; staff pages and the JSON API come later."""
