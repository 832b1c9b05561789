"""The visitor's pages: check in by QR code, view and end one's own visit."""
