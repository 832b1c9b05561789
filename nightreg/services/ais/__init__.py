"""AIS (marinas): the harbour area, the listener, and the entries and exits it records.

- harbour: a site's area (a circle or a polygon) and the switch with its DPIA reference;
- area: the geometry of both shapes (a signed distance to the edge); pure;
- nmea: a receiver's sentences to positions (pyais), bad input counted;
- tracker: positions to entries and exits, debounced; pure, in memory;
- store: the movements in the database, matched to visits;
- listen: UDP, TCP and recorded logs.
"""
